"""A bad port: two turns of one session run at once [TURN-BUSY].

Its ``start_turn`` runs the agent's turn in the caller's own task, with no
admission: two calls on one session both run, their agent steps interleaved.
The two tasks waiting at agent points of one session are on the wire, so
conform's concurrent phase must name TURN-BUSY.

    python tests/ports/overlapping_turns.py     (speaks the adapter protocol on stdio)
"""

from __future__ import annotations

from _port import serve_persistent

from meerkat_ref import PersistentSessionService, RunResult, SessionId, StartTurnRequest


class OverlappingTurns(PersistentSessionService):
    async def start_turn(self, session_id: SessionId | str, req: StartTurnRequest) -> RunResult:
        sid = SessionId.parse(session_id)
        gate = await self._turn_gate(sid)
        handle = self.inner._get(sid)  # the mistake: no turn-busy admission at all
        result = await handle.agent.run_turn(req.prompt, handle.events.publish)
        await self._persist(gate, handle.agent.session())
        return result


if __name__ == "__main__":
    serve_persistent(OverlappingTurns, "overlapping-turns")
