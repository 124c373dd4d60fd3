#!/usr/bin/env node
// memory-port.mjs: a port of Meerkat's session service (meerkat-session 0.4.0, as
// spec/CONTRACT.md states it) over an in-memory store, serving the adapter protocol
// of spec/ADAPTER.md on stdin/stdout. Node.js 20, one file, no dependencies.
// Written from spec/ alone; spec/porting/NOTES.md lists where that was not enough.
// Clause ids in [BRACKETS] are CONTRACT.md's; "§n" are ADAPTER.md's sections.
//
//   .venv/bin/meerkat-ref conform --adapter 'node spec/porting/memory-port.mjs'
//
// Layout: 1 errors; 2 runtime (scopes, waits, scheduling points, locks);
// 3 the scripted session (values and order); 4 the service; 5 the adapter.

// ---------------------------------------------------------------- 1. errors
const CANCELLED = 'Agent error: run cancelled'; // [ERRORS]: the one text of a cancelled call
class SessionError extends Error { // a contract code [ERRORS] [INPUT] or a protocol code (§5)
  constructor(code, message) { super(message); this.code = code; }
}
class Cancelled extends Error {} // thrown at a wait whose scope was cancelled (trio.Cancelled)
const notFound = (id) => new SessionError('SESSION_NOT_FOUND', `session not found: ${id}`);
const runCancelled = () => new SessionError('AGENT_ERROR', CANCELLED);
const newGate = () => ({ lock: new Lock(), archived: false, armed: true, saved: -1 }); // [CHECKPOINT-GATE]
const log = (text) => process.stderr.write(`memory-port: ${text}\n`);

// ---------------------------------------------------------------- 2. runtime
// Node's microtask queue is our run queue. Every task (a service call, a session's task)
// is an async function that suspends only in `wait` below, so we always know what a
// task awaits: a release (a scheduling point), a lock, a command, a message, a reply, a
// session's end. Nothing in the service uses timers or I/O: once the microtask queue is
// empty, every task is blocked on something only a later command can resolve. That is
// exact quiescence, and `settle` observes it with one setImmediate (§3).
const A = { // the adapter's state; store, clock and ids outlive a restart [RESTART]
  svc: null, store: new Map(), clock: 0, ids: 0, refusals: 0, hooks: false,
  parked: new Map(), // label -> {kind, session, resume}: tasks waiting for `release` (§6)
  inflight: new Set(), // request ids of service calls not yet answered, in send order
};
const NEVER = new Promise(() => {});

// A crashed process (restart, open, bye) must do nothing more: each of its tasks, when
// it next resumes, finds its process dead and stays suspended forever (no finally runs).
const guard = (task, p) => p.then(
  (v) => (task.proc.dead ? NEVER : v), (e) => (task.proc.dead ? NEVER : Promise.reject(e)));

class Scope { // a cancel scope: cancel() fails every wait made under it, now and later
  cancelled = false; hooks = new Set();
  cancel() { if (!this.cancelled) { this.cancelled = true; for (const f of [...this.hooks]) f(); } }
}

// Suspend `task` until `arm`'s resume callback is called, or throw Cancelled if `scope`
// is (or gets) cancelled. `arm(resume)` registers the waiter and returns its undo.
function wait(task, scope, arm) {
  return guard(task, new Promise((resolve, reject) => {
    if (scope?.cancelled) return reject(new Cancelled());
    let undo = null;
    const off = () => { undo?.(); scope?.hooks.delete(onCancel); };
    const onCancel = () => { off(); reject(new Cancelled()); };
    undo = arm((v) => { off(); resolve(v); });
    scope?.hooks.add(onCancel);
  }));
}

// A scheduling point (§6). Hooks off: one yield, like a Trio checkpoint (raises if
// cancelled). Hooks on: announce the point, park until `release`; resolves true when
// the release asks for a store fault.
async function point(task, scope, kind, session) {
  if (task.proc.dead) return NEVER;
  if (!A.hooks) {
    await guard(task, Promise.resolve());
    if (scope?.cancelled) throw new Cancelled();
    return false;
  }
  let label = task.label; // two parked tasks never share a label: add #2, #3, ...
  for (let k = 2; A.parked.has(label); k++) label = `${task.label}#${k}`;
  emit({ event: 'point', task: label, kind, session });
  return wait(task, scope, (resume) => {
    const entry = { kind, session, resume };
    A.parked.set(label, entry);
    return () => { if (A.parked.get(label) === entry) A.parked.delete(label); };
  });
}

class Lock { // FIFO; release hands the lock to the first waiter
  held = false; queue = [];
  async acquire(task, scope) {
    if (scope?.cancelled) throw new Cancelled();
    if (!this.held) { this.held = true; return; }
    await wait(task, scope, (resume) => {
      this.queue.push(resume);
      return () => { const i = this.queue.indexOf(resume); if (i >= 0) this.queue.splice(i, 1); };
    });
  }
  release() { const next = this.queue.shift(); if (next) next(); else this.held = false; }
}

function deferred() {
  const d = {};
  d.promise = new Promise((resolve, reject) => Object.assign(d, { resolve, reject }));
  d.promise.catch(() => {}); // answered or not, never an unhandled rejection
  return d;
}

// ---------------------------------------------------------------- 3. sessions
// A session is an immutable value; every change makes a new one (so read, list and a
// save each take one snapshot in one step [ATOMIC]).
const uuid = (n) => {
  const h = n.toString(16).padStart(32, '0');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};
// Python's str.split()/str.strip() whitespace (JS's \s differs: \x1c-\x1f, \x85, \ufeff)
const WS = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;
const words = (text) => text.split(WS).filter(Boolean).length;
const lastReply = (s) => s.messages.findLast((m) => m.role === 'assistant')?.text ?? null;
const order = (a, b) => b.updated_at - a.updated_at || (a.session_id < b.session_id ? -1 : 1); // [LIST-ORDER]

function change(h, patch) { // [TIME] one clock reading per change; [COMPACT] one revision
  const s = h.s;
  h.s = Object.freeze({ ...s, ...patch(s), updated_at: ++A.clock, revision: s.revision + 1 });
}
const view = (s, active) => ({ // §4 view [READ]
  session_id: s.id, created_at: s.created_at, updated_at: s.updated_at,
  message_count: s.messages.length, is_active: active, last_assistant_text: lastReply(s),
  total_tokens: s.input + s.output, input_tokens: s.input, output_tokens: s.output });
const summary = (s, active) => ({ // §4 summary [LIST]
  session_id: s.id, created_at: s.created_at, updated_at: s.updated_at,
  message_count: s.messages.length, total_tokens: s.input + s.output, is_active: active });
const stored = (s) => ({ // §4 stored session [LOAD-PERSISTED]
  created_at: s.created_at, updated_at: s.updated_at, message_count: s.messages.length,
  input_tokens: s.input, output_tokens: s.output, last_assistant_text: lastReply(s),
  revision: s.revision });
const runResult = (id, text, input, output, turns) =>
  ({ session_id: id, text, input_tokens: input, output_tokens: output, turns });

// ---------------------------------------------------------------- 4. the service
// One class for both services: `persistent` false is the ephemeral one (no store, no
// gates). Point kinds and places are the reference's (ADAPTER.md §6's table).
class Service {
  constructor(capacity, persistent) {
    if (typeof capacity !== 'number' || !Number.isInteger(capacity) || capacity < 1) { // [INPUT]
      throw invalid(`max_sessions must be a positive integer, got ${String(JSON.stringify(capacity)).slice(0, 80)}`);
    }
    this.capacity = capacity; this.persistent = persistent;
    this.handles = new Map(); // live (registered) sessions [LIVE-TASK]
    this.gates = new Map(); // [CHECKPOINT-GATE] one per live session; tombstones [ARCHIVE]
    this.reserved = 0; // places held: builds in flight, live and stopping tasks [CAPACITY]
    this.proc = { dead: false };
  }

  async storeCall(task, kind, id, op, scope = null) { // [STORE-*] a point before each call; faults (§6)
    const fault = await point(task, scope, kind, id);
    if (fault) throw new SessionError('SESSION_STORE_ERROR', `injected fault at ${kind}`);
    return op(A.store);
  }

  // [CREATE] capacity, build (id + tick), register, first turn, save through the gate
  async create(task, req) {
    if (this.reserved >= this.capacity) { // [CAPACITY] check and reserve in one step: no id, no tick
      throw new SessionError('AGENT_ERROR', `Max sessions reached (${this.handles.size}/${this.capacity})`);
    }
    if (req.prompt === '/fail-build') { // [CREATE] the scripted builder refuses it: no id, no tick
      throw new SessionError('AGENT_ERROR', 'Agent error: build failed: the scripted builder refuses this prompt');
    }
    this.reserved++;
    let h;
    try {
      const n = ++A.ids, id = uuid(n); // [IDS] the n-th create takes id n...
      await point(task, null, 'agent.step', id); // the build's await (§2: between id and tick)
      const t = ++A.clock; // [TIME] ...and, hooks off, the n-th tick: the yield above is FIFO
      const messages = req.system_prompt == null ? [] : [{ role: 'system', text: req.system_prompt }];
      const s = Object.freeze({ id, created_at: t, updated_at: t, messages, input: 0, output: 0,
        revision: 0 }); // the system prompt is part of the build: no revision, no tick of its own
      if (this.handles.has(id)) throw new SessionError('AGENT_ERROR', `Duplicate session ID generated: ${id}`);
      if (this.gates.has(id)) throw new SessionError('AGENT_ERROR', `session ${id} is being archived`);
      h = this.register(n, s);
      if (req.initial_turn !== 'defer') this.admit(h); // the first turn holds the flag [TURN-BUSY]
    } catch (e) { this.reserved--; throw e; } // a failed build gives its place back
    if (req.initial_turn === 'defer') { // [DEFER]
      if (this.persistent) await this.persist(task, h, h.s);
      return runResult(h.id, '', 0, 0, 0);
    }
    const r = await this.send(task, h, req.prompt, req.host_mode, runCancelled); // admitted at registration
    if (this.persistent) await this.persist(task, h, r.snap);
    return r.result;
  }

  // [ATOMIC] registration: map, gate, task and (for a first turn) admission, one step
  register(n, s) {
    const h = { id: s.id, label: `session s${n.toString(16)}`, s, running: false, turn: null,
      scope: new Scope(), cmds: [], wakeCmd: null, inbox: [], wakeMsg: null,
      pending: new Set(), ended: false, done: [], gate: null };
    this.handles.set(h.id, h);
    if (this.persistent) { h.gate = newGate(); this.gates.set(h.id, h.gate); }
    this.sessionTask(h).catch((e) => log(`session task failed: ${e.stack}`));
    return h;
  }

  admit(h) { h.running = true; h.turn = new Scope(); } // [TURN-BUSY] check-and-set by the caller

  // A command to the session task, and its reply. If the task has ended (archived) by
  // then, a turn is SESSION_NOT_FOUND [TURN] and a create's first turn AGENT_ERROR [CREATE].
  async send(task, h, prompt, host, ended) {
    await point(task, null, 'cmd.send', h.id);
    if (h.ended) throw ended();
    const reply = deferred();
    h.pending.add(reply); h.cmds.push({ prompt, host, reply }); h.wakeCmd?.();
    return guard(task, reply.promise);
  }

  // [DURABILITY] create and turn saves go through the gate; overtaken by archive: AGENT_ERROR
  async persist(task, h, snap) {
    if ((await this.write(task, null, h.gate, snap, false)) === 'archived') throw runCancelled();
  }

  // [CHECKPOINT-GATE] lock; skip if archived, if a disarmed checkpoint, if not newer
  async write(task, scope, gate, snap, checkpoint) {
    await point(task, scope, 'gate.acquire', snap.id);
    await gate.lock.acquire(task, scope);
    try {
      if (gate.archived) return 'archived';
      if (checkpoint && !gate.armed) return 'disarmed';
      if (snap.revision <= gate.saved) return 'unchanged';
      await this.storeCall(task, 'store.save', snap.id, (st) => {
        if (A.refusals) { // §11 fail_next_save: the store refuses this save [SAVE-FAILED]
          A.refusals--;
          throw new SessionError('SESSION_STORE_ERROR', `store save failed for ${snap.id}: refused`);
        }
        st.set(snap.id, snap);
      }, scope);
      gate.saved = snap.revision;
      return 'saved';
    } finally { gate.lock.release(); }
  }

  // [LIVE-TASK] the session's own task: runs its turns one at a time, in order
  async sessionTask(h) {
    const task = { label: h.label, proc: this.proc };
    try {
      await point(task, h.scope, 'task.start', h.id); // a new task need not run at once (§6)
      for (;;) {
        while (!h.cmds.length) {
          await wait(task, h.scope, (r) => { h.wakeCmd = r; return () => (h.wakeCmd = null); });
        }
        const cmd = h.cmds.shift();
        try {
          const result = await this.turn(task, h, h.turn, cmd);
          h.running = false; h.turn = null; // cleared before the caller's save [TURN-BUSY]
          h.pending.delete(cmd.reply); cmd.reply.resolve({ result, snap: h.s });
        } catch (e) {
          const failed = e instanceof SessionError && e.code === 'AGENT_ERROR';
          if (!(e instanceof Cancelled || failed) || h.scope.cancelled) throw e;
          h.running = false; h.turn = null; // [INTERRUPT] stays live; what was appended stays
          h.pending.delete(cmd.reply); cmd.reply.reject(failed ? e : runCancelled());
        }
      }
    } catch (e) {
      if (!(e instanceof Cancelled)) throw e;
    } finally { // [ARCHIVE-STOP] answer every waiting call, close the injector, give the place back
      h.ended = true;
      for (const r of h.pending) r.reject(runCancelled());
      h.pending.clear(); this.reserved--;
      for (const f of h.done.splice(0)) f();
    }
  }

  // [TURN] a prompt; [HOST] then checkpoint and serve messages until cancelled
  async turn(task, h, scope, { prompt, host }) {
    if (prompt === '/fail') { // [TURN] the scripted agent fails as the turn starts: nothing appended
      await point(task, scope, 'agent.step', h.id);
      throw new SessionError('AGENT_ERROR', 'Agent error: the scripted agent fails this prompt');
    }
    const [input, output] = await this.exchange(task, h, scope, prompt);
    if (host) {
      await this.checkpoint(task, h, scope);
      for (;;) { // [HOST-MESSAGE] in order; a message taken off the inbox is gone
        while (!h.inbox.length) {
          await wait(task, scope, (r) => { h.wakeMsg = r; return () => (h.wakeMsg = null); });
        }
        const text = h.inbox.shift();
        if (text === '/compact') await this.compact(task, h, scope);
        else await this.exchange(task, h, scope, text);
        await this.checkpoint(task, h, scope);
      }
    }
    return runResult(h.id, `echo: ${prompt}`, input, output, 1);
  }

  async exchange(task, h, scope, text) { // the scripted agent: 3 steps, 2 changes (§2)
    const n = words(text), usage = [n + 1, n + 2];
    await point(task, scope, 'agent.step', h.id);
    change(h, (s) => ({ messages: [...s.messages, { role: 'user', text }] }));
    await point(task, scope, 'agent.step', h.id);
    change(h, (s) => ({ messages: [...s.messages, { role: 'assistant', text: `echo: ${text}` }],
      input: s.input + usage[0], output: s.output + usage[1] }));
    await point(task, scope, 'agent.step', h.id);
    return usage;
  }

  async compact(task, h, scope) { // [COMPACT] one step, then one change of the same length
    await point(task, scope, 'agent.step', h.id);
    const last = h.s.messages.findLastIndex((m) => m.role === 'assistant');
    const keep = (m, i) => m.role === 'system' || i === last;
    const compacted = (m, i) => (keep(m, i) ? m : { role: m.role, text: '[compacted]' });
    change(h, (s) => ({ messages: s.messages.map(compacted) }));
  }

  async checkpoint(task, h, scope) { // [CHECKPOINT] a failed save is logged, never raised
    if (!this.persistent) return;
    await point(task, scope, 'checkpoint', h.id);
    try { await this.write(task, scope, h.gate, h.s, true); } catch (e) {
      if (!(e instanceof SessionError)) throw e;
      log(`checkpoint of ${h.id} failed: ${e.message}`);
    }
  }

  async startTurn(task, { session: id, prompt, host_mode }) { // [TURN] [TURN-BUSY]
    const h = this.handles.get(id);
    if (!h) throw notFound(id);
    if (h.running) throw new SessionError('SESSION_BUSY', `session is busy: ${id}`);
    this.admit(h);
    const r = await this.send(task, h, prompt, host_mode, () => notFound(id));
    if (this.persistent) await this.persist(task, h, r.snap);
    return r.result;
  }

  async inject(task, { session: id, text }) { // [HOST-MESSAGE] queue, return at once
    const h = this.handles.get(id);
    if (!h || h.ended) throw notFound(id);
    h.inbox.push(text); h.wakeMsg?.();
    return null;
  }

  async interrupt(task, { session: id }) { // [INTERRUPT] [INTERRUPT-RUNNING]
    const h = this.handles.get(id);
    if (!h) throw notFound(id);
    if (!h.running) throw new SessionError('SESSION_NOT_RUNNING', `session is not running: ${id}`);
    h.turn.cancel(); // a turn not yet started starts cancelled
    return null;
  }

  async read(task, { session: id }) { // [READ] live at once; [READ-FALLBACK] the store
    const h = this.handles.get(id);
    if (h) return view(h.s, h.running);
    if (!this.persistent) throw notFound(id);
    const s = await this.storeCall(task, 'store.load', id, (st) => st.get(id));
    if (!s) throw notFound(id);
    return view(s, false);
  }

  async list(task, { offset, limit }) { // [LIST] live first (no point), then the store
    const live = [...this.handles.values()].map((h) => summary(h.s, h.running));
    let rows = live;
    if (this.persistent) {
      const seen = new Set(live.map((r) => r.session_id));
      const all = await this.storeCall(task, 'store.list', null, (st) => [...st.values()]);
      rows = live.concat(all.filter((s) => !seen.has(s.id)).map((s) => summary(s, false)));
    }
    const from = offset ?? 0; // [LIST-PAGE] merge, order, then page
    return rows.sort(order).slice(from, limit == null ? undefined : from + limit);
  }

  needStore(what) {
    if (this.persistent) return;
    throw new SessionError('SESSION_PERSISTENCE_DISABLED', `${what}: the service is not persistent`);
  }

  async loadPersisted(task, { session: id }) { // [LOAD-PERSISTED]
    this.needStore('load_persisted');
    const s = await this.storeCall(task, 'store.load', id, (st) => st.get(id));
    return s ? stored(s) : null;
  }

  async sweep(task, armed, what) { // [STOP-RESUME] the gates present at the start, one at a time
    this.needStore(what);
    for (const [id, gate] of [...this.gates]) {
      await point(task, null, 'gate.acquire', id);
      await gate.lock.acquire(task, null);
      gate.armed = armed; gate.lock.release();
    }
    return null;
  }

  // [ARCHIVE] [ARCHIVE-ATOMIC] [ARCHIVE-STOP] [ARCHIVE-FINAL]
  async archive(task, { session: id }) {
    if (!this.persistent) {
      const h = this.handles.get(id);
      if (!h) throw notFound(id);
      this.handles.delete(id);
      await point(task, null, 'archive.stop', id);
      return this.stop(task, h);
    }
    let gate = this.gates.get(id), tomb = false;
    if (!gate) { // not live: ask the store, then look again (a create may have registered it)
      const there = await this.storeCall(task, 'store.exists', id, (st) => st.has(id));
      gate = this.gates.get(id);
      if (!gate) {
        if (!there) throw notFound(id);
        gate = newGate(); // a tombstone
        tomb = true; this.gates.set(id, gate);
      }
    }
    await point(task, null, 'gate.acquire', id);
    await gate.lock.acquire(task, null);
    const was = gate.archived; // archived already: a concurrent archive won; we find nothing
    try {
      gate.archived = true;
      let h;
      try {
        const there = await this.storeCall(task, 'store.exists', id, (st) => st.has(id));
        if (there) await this.storeCall(task, 'store.delete', id, (st) => st.delete(id)); // the commit point
        h = this.handles.get(id);
        if (!there && !h) throw notFound(id);
      } catch (e) { // before the commit: nothing has changed
        gate.archived = was;
        if (tomb) this.gates.delete(id);
        throw e;
      }
      if (h) { // committed: the session leaves the map, then its task is stopped
        this.handles.delete(id);
        await point(task, null, 'archive.stop', id);
        await this.stop(task, h);
      }
      if (this.gates.get(id) === gate) this.gates.delete(id);
      return null;
    } finally { gate.lock.release(); }
  }

  async stop(task, h) { // cancel the session task and wait for it to end
    h.scope.cancel(); h.turn?.cancel();
    if (!h.ended) await wait(task, null, (r) => { h.done.push(r); return null; });
    return null;
  }

  call(task, cmd, a) {
    switch (cmd) {
      case 'create': return this.create(task, a);
      case 'start_turn': return this.startTurn(task, a);
      case 'inject': return this.inject(task, a);
      case 'interrupt': return this.interrupt(task, a);
      case 'read': return this.read(task, a);
      case 'list': return this.list(task, a);
      case 'archive': return this.archive(task, a);
      case 'load_persisted': return this.loadPersisted(task, a);
      case 'cancel_all_checkpointers': return this.sweep(task, false, cmd);
      case 'rearm_all_checkpointers': return this.sweep(task, true, cmd);
    }
    throw new Error(`no such call ${cmd}`);
  }
}

// ---------------------------------------------------------------- 5. the adapter
const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const fail = (id, code, message) => emit({ id, error: { code, message } });
const bad = (message) => new SessionError('BAD_REQUEST', message);
const invalid = (message) => new SessionError('INVALID_ARGUMENT', message);

// §3 fields of each service call: type 's' string, 's?' string or null, 'b' bool,
// 'i?' int or null; a leading '!' marks a required field. Any other field is
// BAD_REQUEST [WIRE-FIELDS] (besides id, cmd and task).
const SID = { session: '!s' };
const CALLS = {
  create: { prompt: '!s', system_prompt: 's?', model: 's', initial_turn: 's', host_mode: 'b' },
  start_turn: { ...SID, prompt: '!s', host_mode: 'b' }, inject: { ...SID, text: '!s' },
  interrupt: SID, read: SID, archive: SID, load_persisted: SID, list: { offset: 'i?', limit: 'i?' },
  cancel_all_checkpointers: {}, rearm_all_checkpointers: {},
};
const TYPES = {
  s: (v) => typeof v === 'string', b: (v) => typeof v === 'boolean',
  'i?': (v) => v === null || Number.isInteger(v), 's?': (v) => v === null || typeof v === 'string',
};

// [IDS] canonical UUID text only: lower-case 8-4-4-4-12 hex digits
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
function parseId(text) {
  if (!ID.test(text)) throw invalid(`malformed session id '${text}': expected canonical UUID text`);
  return text;
}

// §3: a missing or ill-typed field is BAD_REQUEST; a value the contract rejects is
// INVALID_ARGUMENT [INPUT]; both before anything is touched. Returns the call's args.
function validate(msg) {
  const spec = CALLS[msg.cmd], a = {};
  if (msg.task !== undefined && typeof msg.task !== 'string') throw bad(`${msg.cmd}: 'task' must be a string`);
  const unknown = Object.keys(msg).filter((k) => !['id', 'cmd', 'task'].includes(k) && !Object.hasOwn(spec, k));
  if (unknown.length) throw bad(`${msg.cmd}: unknown field '${unknown[0]}'`);
  for (const [field, t] of Object.entries(spec)) {
    const type = t.replace('!', '');
    if (msg[field] === undefined) {
      if (t[0] === '!') throw bad(`${msg.cmd}: missing field '${field}'`);
      continue;
    }
    if (!TYPES[type](msg[field])) throw bad(`${msg.cmd}: field '${field}' has the wrong type`);
    a[field] = msg[field];
  }
  if (a.initial_turn !== undefined && !['run_immediately', 'defer'].includes(a.initial_turn)) {
    throw bad('create: initial_turn must be run_immediately or defer');
  }
  if (a.session !== undefined) a.session = parseId(a.session);
  if (a.model !== undefined && !a.model.split(WS).join('')) throw invalid('model must be a non-empty string');
  for (const k of ['offset', 'limit']) if (a[k] < 0) throw invalid(`${k} must not be negative`);
  return a;
}

function startCall(msg) { // each service call runs as its own task, answered when it ends
  if (!A.svc) return fail(msg.id, 'NOT_OPEN', 'no service is open');
  let a;
  try { a = validate(msg); } catch (e) { return fail(msg.id, e.code, e.message); }
  const task = { label: msg.task ?? `req ${msg.id}`, proc: A.svc.proc };
  A.inflight.add(msg.id);
  A.svc.call(task, msg.cmd, a).then(
    (ok) => answer(msg.id, { ok: ok ?? null }),
    (e) => answer(msg.id, { error: e instanceof SessionError ? { code: e.code, message: e.message }
      : (log(e.stack), { code: 'INTERNAL', message: String(e) }) }));
}
const answer = (id, body) => { if (A.inflight.delete(id)) emit({ id, ...body }); };

function crash() { // the process dies: calls in flight answered crashed, in send order
  if (A.svc) A.svc.proc.dead = true;
  for (const id of A.inflight) emit({ id, crashed: true });
  A.inflight.clear(); A.parked.clear(); A.hooks = false; // hooks do not survive (§3, §6)
}

// §6 footprints: what a step released at each point may touch (the released task and every
// task it wakes), and what a call runs before its first point. This port places its points
// where the reference does, so it declares the reference's table (ADAPTER.md §6), in the
// contract's resources. `meerkat-ref check --adapter ... --audit` runs both orders of every
// pair this makes independent and compares what the wire shows.
const LOCK = ['gate:<id>', 'inbox:<id>']; // a gate's lock let go: its next waiter runs on
const t = (reads, writes) => ({ reads, writes });
const FOOTPRINTS = {
  caller: {
    'agent.step': t([], ['clock', 'capacity', 'live:<id>', 'turn:<id>', 'agent:<id>', ...LOCK]),
    'cmd.send': t([], ['turn:<id>']),
    'gate.acquire': t([], LOCK),
    'store.save': t([], ['row:<id>', ...LOCK]),
    'store.load': t(['row:<id>'], []),
    'store.list': t(['row:*'], []),
    'store.exists': t(['row:<id>'], ['live:<id>', ...LOCK]),
    'store.delete': t([], ['row:<id>', 'live:<id>', ...LOCK]),
    'archive.stop': t([], ['live:<id>', 'turn:<id>', 'capacity', ...LOCK]),
  },
  session: {
    'agent.step': t([], ['clock', 'agent:<id>', 'turn:<id>']),
    checkpoint: t(['agent:<id>'], []),
    'task.start': t([], ['turn:<id>']),
    'gate.acquire': t([], LOCK),
    'store.save': t([], ['row:<id>', ...LOCK]),
  },
  call: {
    create: t(['live:*'], ['ids', 'capacity']),
    start_turn: t(['gate:<id>', 'live:<id>'], ['turn:<id>']),
    inject: t(['live:<id>'], ['inbox:<id>']),
    interrupt: t(['live:<id>'], ['turn:<id>', ...LOCK]),
    read: t(['live:<id>', 'turn:<id>', 'agent:<id>'], []),
    list: t(['live:*', 'turn:*', 'agent:*'], []),
    archive: t(['gate:<id>', 'live:<id>'], []),
    load_persisted: t([], []),
    cancel_all_checkpointers: t(['gate:*'], []),
    rearm_all_checkpointers: t(['gate:*'], []),
  },
};

// `node memory-port.mjs --no-footprints` declares none: every step then conflicts with every
// other (exact, only slower), the figure README compares with.
const DECLARE = !process.argv.includes('--no-footprints');

const CONTROL = {
  hello: () => ({ protocol: 'meerkat-ref/adapter@1', implementation: 'meerkat-js-memory-port',
    version: '0.1.0', contract: 'meerkat-session 0.4.0', variant: 'reference',
    ...(DECLARE ? { capabilities: ['points', 'faults', 'footprints'], footprints: FOOTPRINTS }
      : { capabilities: ['points', 'faults'] }), store: 'memory' }),
  open(m) { // the capacity is the service's to judge [INPUT]; only a missing or huge one is ours
    if (!Object.hasOwn(m, 'capacity')) throw bad("open: missing field 'capacity'");
    if (Number.isInteger(m.capacity) && m.capacity > 10000) throw bad('open: capacity must be at most 10000');
    if (m.persistent !== undefined && typeof m.persistent !== 'boolean') throw bad('open: persistent: a bool');
    crash(); A.svc = null; // refused or not, the open one is stopped first; none is open if refused
    Object.assign(A, { store: new Map(), clock: 0, ids: 0, refusals: 0 });
    A.svc = new Service(m.capacity, m.persistent ?? true);
    return null;
  },
  restart() { // [RESTART] same store, clock and ids; a new process
    if (!A.svc) throw new SessionError('NOT_OPEN', 'no service is open');
    const { capacity, persistent } = A.svc;
    crash(); A.svc = new Service(capacity, persistent);
    return null;
  },
  fail_next_save() { // §11 one more refused save; the store's, so a restart keeps it
    if (!A.svc) throw new SessionError('NOT_OPEN', 'no service is open');
    if (A.svc.persistent) A.refusals++;
    return null;
  },
  observe_store() { // read around the service: no points
    if (!A.svc) throw new SessionError('NOT_OPEN', 'no service is open');
    return Object.fromEntries([...A.store].map(([id, s]) => [id, stored(s)]));
  },
  control(m) {
    if (typeof m.points !== 'boolean') throw bad('control: points must be a bool');
    A.hooks = m.points;
    if (m.points) return null;
    const all = [...A.parked.values()]; // off releases every parked task
    A.parked.clear();
    for (const p of all) p.resume(false);
    return null;
  },
  release(m) {
    if (typeof m.task !== 'string' || (m.fault !== undefined && typeof m.fault !== 'boolean')) {
      throw bad('release: task (string), fault (bool)');
    }
    const p = A.parked.get(m.task);
    if (!p) throw new SessionError('NOT_PARKED', `no task '${m.task}' is parked`);
    if (m.fault && !['store.save', 'store.load', 'store.exists', 'store.delete'].includes(p.kind)) {
      throw bad(`a fault needs a store write or read, not ${p.kind}`);
    }
    A.parked.delete(m.task); p.resume(Boolean(m.fault));
    return null;
  },
  at_once(m) { // §3 start every call before any runs past its first suspension point
    if (!Array.isArray(m.commands) || !m.commands.length || !m.commands.every(isCall)) {
      throw bad('at_once: commands must be a non-empty list of service calls');
    }
    for (const c of m.commands) startCall(c);
    return null;
  },
};
const OWN_FIELDS = { // the commands answered here, and their fields besides id and cmd (§3)
  hello: [], open: ['capacity', 'persistent'], settle: ['store'], control: ['points'],
  release: ['task', 'fault'], at_once: ['commands'], bye: [], restart: ['task'], observe_store: ['task'],
};
const isCall = (c) => c && typeof c === 'object' && typeof c.id === 'string' && c.id !== ''
  && Object.hasOwn(CALLS, c.cmd);

function handle(line) {
  let m;
  try { m = JSON.parse(line); } catch { return fail(null, 'BAD_REQUEST', 'not JSON'); }
  if (!m || typeof m !== 'object' || Array.isArray(m) || typeof m.id !== 'string' || !m.id) {
    return fail(null, 'BAD_REQUEST', 'not a command with an id');
  }
  if (typeof m.cmd !== 'string') return fail(m.id, 'BAD_REQUEST', 'missing cmd');
  const own = OWN_FIELDS[m.cmd]; // [WIRE-FIELDS] no field a command does not list
  const extra = own && Object.keys(m).find((k) => k !== 'id' && k !== 'cmd' && !own.includes(k));
  if (extra) return fail(m.id, 'BAD_REQUEST', `${m.cmd}: unknown field '${extra}'`);
  if (m.cmd === 'settle') { // §3 every task blocked (section 2); later lines wait for it
    settling = true;
    return setImmediate(() => {
      const parked = [...A.parked].map(([task, p]) => ({ task, kind: p.kind, session: p.session }));
      emit({ id: m.id, ok: { parked: parked.sort((x, y) => (x.task < y.task ? -1 : 1)) } });
      settling = false; pump();
    });
  }
  if (m.cmd === 'bye') { crash(); emit({ id: m.id, ok: null }); return process.exit(0); }
  if (Object.hasOwn(CALLS, m.cmd)) return startCall(m);
  if (!Object.hasOwn(CONTROL, m.cmd)) return fail(m.id, 'UNKNOWN_COMMAND', `unknown command '${m.cmd}'`);
  try { emit({ id: m.id, ok: CONTROL[m.cmd](m) }); } catch (e) {
    if (!(e instanceof SessionError)) throw e;
    fail(m.id, e.code, e.message);
  }
}

// Lines are handled synchronously as they arrive (see `guard` for why a restart in
// mid-chunk is still clean), except that nothing is read past an unanswered settle.
// End of input is `bye` without its answer (calls in flight are answered crashed).
let buffer = '', settling = false, ended = false;
const lines = [];
function pump() {
  while (!settling && lines.length) { const line = lines.shift(); if (line.trim()) handle(line); }
  if (!settling && ended) { crash(); process.exit(0); }
}
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  const parts = (buffer + chunk).split('\n');
  buffer = parts.pop(); lines.push(...parts); pump();
});
process.stdin.on('end', () => { lines.push(buffer); ended = true; pump(); });
