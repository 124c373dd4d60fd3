"""Drive the reference adapter and a port in lockstep, hooks on, and stop at the first difference.

    python spec/porting/lockstep.py --port 'node spec/porting/memory-port.mjs' --seeds 1-50

Each step sends one random command (a service call with a `task` label, or `release` of a
parked task, sometimes with a store fault) to both adapters, then `settle`; the lines each
wrote meanwhile are compared as multisets (error messages ignored). Because both run under
the hooks, one task at a time, a difference is a difference in semantics or in where the
scheduling points are, not in luck. `conform` judges a port against the model; this judges
it against the reference, step for step. Two things are not compared (NOTES.md 12, 13):
a mass release (`control` off with several parked tasks: the order is the scheduler's), and
a restart while tasks are parked.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import subprocess
import sys
from typing import Any

REFERENCE = f"{sys.executable} -m meerkat_ref.adapter"
STORE_KINDS = ("store.save", "store.load", "store.exists", "store.delete")
Obj = dict[str, Any]


class Adapter:
    def __init__(self, command: str) -> None:
        self.proc = subprocess.Popen(
            shlex.split(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, bufsize=1,
        )

    def step(self, command: Obj, settle_id: str) -> tuple[list[str], Obj]:
        """Send `command` then settle; the lines written before the settle's answer, and it."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        for line in (command, {"id": settle_id, "cmd": "settle"}):
            self.proc.stdin.write(json.dumps(line) + "\n")
        self.proc.stdin.flush()
        seen: list[str] = []
        while True:
            raw = self.proc.stdout.readline()
            if not raw:
                raise SystemExit(f"adapter exited during {command}")
            answer: Obj = json.loads(raw)
            if "error" in answer:
                answer["error"].pop("message", None)
            if answer.get("id") == settle_id:
                return sorted(seen), answer
            seen.append(json.dumps(answer, sort_keys=True))

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def sid(n: int) -> str:
    return f"00000000-0000-0000-0000-{n:012x}"


def service_call(rnd: random.Random) -> Obj:
    s = sid(rnd.randint(1, 4))
    calls: list[Obj] = [
        {"cmd": "create", "prompt": rnd.choice(["a", "b c", "/compact"]),
         "initial_turn": rnd.choice(["run_immediately", "defer"]), "host_mode": rnd.random() < 0.3},
        {"cmd": "start_turn", "session": s, "prompt": "p q", "host_mode": rnd.random() < 0.3},
        {"cmd": "inject", "session": s, "text": rnd.choice(["x", "/compact"])},
        {"cmd": "interrupt", "session": s}, {"cmd": "read", "session": s},
        {"cmd": "list", "offset": rnd.choice([None, 0, 1]), "limit": rnd.choice([None, 1, 2])},
        {"cmd": "archive", "session": s}, {"cmd": "load_persisted", "session": s},
        {"cmd": "cancel_all_checkpointers"}, {"cmd": "rearm_all_checkpointers"},
    ]
    call = rnd.choices(calls, weights=[4, 4, 3, 2, 2, 2, 3, 1, 1, 1])[0]
    return {**call, "task": rnd.choice("ABC")}


def next_command(rnd: random.Random, parked: list[Obj], hooks: bool) -> Obj | None:
    if parked and rnd.random() < 0.55:
        p = rnd.choice(parked)
        fault = p["kind"] in STORE_KINDS and rnd.random() < 0.08
        return {"cmd": "release", "task": p["task"], **({"fault": True} if fault else {})}
    r = rnd.random()
    if r < 0.04:
        return {"cmd": "observe_store"}
    if r < 0.06:
        return None if parked else {"cmd": "restart"}
    if r < 0.10:
        # turning the hooks off releases every parked task at once: not comparable
        return None if hooks and len(parked) > 1 else {"cmd": "control", "points": not hooks}
    return service_call(rnd)


def run(seed: int, steps: int, port: str) -> bool:
    rnd = random.Random(seed)
    adapters = [Adapter(REFERENCE), Adapter(port)]
    history: list[Obj] = []
    n, hooks = 0, True
    parked: list[Obj] = []
    opening = {"cmd": "open", "capacity": rnd.choice([1, 2, 3]), "persistent": rnd.random() < 0.8}
    try:
        for command in [opening, {"cmd": "control", "points": True}, *([None] * steps)]:
            command = command or next_command(rnd, parked, hooks)
            if command is None:
                continue
            n += 2
            command = {**command, "id": str(n - 1)}
            history.append(command)
            ref, other = (a.step(command, str(n)) for a in adapters)
            if ref != other:
                print(f"seed {seed}: difference after {len(history)} commands:")
                print("\n".join(json.dumps(c) for c in history))
                print(f"reference: {ref}\nport:      {other}")
                return False
            parked = ref[1].get("ok", {}).get("parked", [])
            if command["cmd"] in ("control", "restart"):
                hooks = command["cmd"] == "control" and bool(command["points"])
        return True
    finally:
        for a in adapters:
            a.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", required=True, help="the port adapter's command line")
    parser.add_argument("--seeds", default="1-20", help="a range FIRST-LAST (default 1-20)")
    parser.add_argument("--steps", type=int, default=200, help="commands per seed (default 200)")
    args = parser.parse_args()
    first, _, last = args.seeds.partition("-")
    for seed in range(int(first), int(last or first) + 1):
        if not run(seed, args.steps, args.port):
            return 1
    print(f"no difference in seeds {args.seeds}, {args.steps} commands each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
