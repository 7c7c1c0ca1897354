/**
 * One data-plane worker (forked by plane.ts): serves `/gw/` with the same Gateway as the main
 * process, but asks the primary to verify tokens, hold approvals and look up non-active names,
 * and sends finished calls back in batches. State (agents, policies, settings) arrives by IPC.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { AnsError } from '../errors/index.js';
import type { AgentRow } from '../../ans/index.js';
import type { Verdict } from './approval.js';
import { Backends } from './backend.js';
import { peerChain, type VerifiedCaller } from './caller.js';
import { GatewayErrors } from './errors.js';
import { CallColumns } from './audit.js';
import { Gateway } from './gateway.js';
import type { FromWorker, PlaneState, ToWorker } from './plane.js';
import { PolicySet } from './policy.js';
import { Upstreams } from './proxy.js';
import { LeasedRate } from './ratelimit.js';
import { DEFAULT_SETTINGS, type GatewaySettings } from './settings.js';
import { listenForUpgrades } from './upgrade.js';

const send = (m: FromWorker) => process.send?.(m);

let state: PlaneState | undefined;
let settings: GatewaySettings = DEFAULT_SETTINGS;
let policies = new PolicySet([], '');
let byFqdn = new Map<string, AgentRow>();
let byId = new Map<string, AgentRow>();
let reachable = new Set<string>();
let generation = 0;
const cache = new Map<string, VerifiedCaller>();
let nextId = 1;
const waiting = new Map<number, (m: ToWorker) => void>();
/** Held calls by ticket id, waiting for the primary's verdict. */
const verdicts = new Map<string, (v: Verdict) => void>();

function ask<T extends ToWorker>(m: FromWorker & { id: number }): Promise<T> {
  return new Promise((resolve) => {
    waiting.set(m.id, resolve as (m: ToWorker) => void);
    send(m);
  });
}

const upstreams = new Upstreams({
  timeouts: () => ({
    connectMs: settings.connectTimeoutMs,
    firstByteMs: settings.firstByteTimeoutMs,
    idleMs: settings.idleTimeoutMs,
  }),
  tls: { caPem: () => state?.caPem ?? '' },
});

const backends = new Backends(
  { byName: (f) => byFqdn.get(f.toLowerCase().replace(/\.$/, '')), reachable: (id) => reachable.has(id) },
  async (fqdn) => (await ask<ToWorker & { t: 'status' }>({ t: 'status', id: nextId++, fqdn })).status,
  (fqdn) => settings.agents[fqdn]?.balancer ?? settings.balancer,
  () => ({ maxFailures: settings.maxFailures, ejectMs: settings.ejectMs, maxEjectMs: settings.maxEjectMs }),
  (a) => send({ t: 'eject', target: a.fqdn }),
);

const auth = {
  cached(token: string, now: number): VerifiedCaller | undefined {
    const c = cache.get(token);
    if (!c) return undefined;
    if (c.expMs <= now) {
      cache.delete(token);
      return undefined;
    }
    if (!byId.has(c.agentId)) throw GatewayErrors.callerNotActive();
    c.generation = generation;
    return c;
  },
  async verify(token: string): Promise<VerifiedCaller> {
    const hit = auth.cached(token, Date.now());
    if (hit) return hit;
    const r = await ask<ToWorker & { t: 'verified' }>({ t: 'verify', id: nextId++, token });
    if (r.error) throw new AnsError(r.error.code, r.error.status, r.error.message);
    const c = { ...r.caller!, generation };
    if (cache.size > 100_000) cache.clear();
    cache.set(token, c);
    return c;
  },
  stillActive(c: VerifiedCaller): boolean {
    return c.generation === generation && byId.has(c.agentId);
  },
  /** Mutual TLS (HTTPS workers): the primary checks the chain once per connection. */
  async peer(sock: TLSSocket): Promise<VerifiedCaller | undefined> {
    const hit = peers.get(sock);
    if (hit && auth.stillActive(hit) && hit.expMs > Date.now()) return hit;
    const chain = peerChain(sock);
    if (!chain) return undefined;
    const r = await ask<ToWorker & { t: 'verified' }>({ t: 'verifyPeer', id: nextId++, ...chain });
    if (r.error) throw new AnsError(r.error.code, r.error.status, r.error.message);
    const c = { ...r.caller!, generation };
    peers.set(sock, c);
    return c;
  },
};
const peers = new WeakMap<TLSSocket, VerifiedCaller>();

// Finished calls go to the main process in columns (a few typed arrays, not an object per call).
let outbox = new CallColumns();
const sendCalls = () => {
  if (outbox.length === 0) return;
  send({ t: 'calls', batch: outbox.batch() });
  outbox = new CallColumns();
};
const flusher = setInterval(sendCalls, 100);
flusher.unref();

const gw = new Gateway({
  zone: '',
  publicUrl: '',
  settings: () => settings,
  auth,
  rate: new LeasedRate(
    async (key) => {
      const r = await ask<ToWorker & { t: 'leased' }>({ t: 'lease', id: nextId++, key });
      return { granted: r.granted, wait: r.wait };
    },
    (key, n) => send({ t: 'unlease', key, n }),
  ),
  backends,
  policies: {
    get current() {
      return policies;
    },
  },
  approvals: {
    full: () => false,
    async hold(t, signal) {
      const r = await ask<ToWorker & { t: 'held' }>({ t: 'hold', id: nextId++, ticket: t });
      if (r.error === 'full') throw GatewayErrors.tooManyApprovals();
      if (!r.ticket) throw new Error('the primary could not store the approval ticket');
      const ticket = r.ticket;
      const verdict = new Promise<Verdict>((resolve) => {
        const onClose = () => send({ t: 'cancel', ticket: ticket.id });
        verdicts.set(ticket.id, (v) => {
          verdicts.delete(ticket.id);
          signal?.removeListener('close', onClose);
          resolve(v);
        });
        signal?.once('close', onClose);
        if (signal?.destroyed) onClose();
      });
      return { ticket, verdict };
    },
  },
  upstreams,
  audit: { record: () => undefined, recordFrom: () => undefined },
  graph: { note: () => undefined },
  metrics: undefined,
  now: Date.now,
  report: (o) => {
    outbox.push(o);
    if (outbox.length >= 2000) sendCalls();
  },
});

function apply(s: PlaneState): void {
  state = s;
  settings = s.settings;
  policies = new PolicySet(s.policies, s.zone);
  const agents = s.agents as unknown as AgentRow[];
  byFqdn = new Map(agents.map((a) => [a.fqdn, a]));
  byId = new Map(agents.map((a) => [a.id, a]));
  reachable = new Set(s.reachable);
  Object.assign(gw.p, { zone: s.zone, publicUrl: s.publicUrl });
  backends.forgetRefusals();
  // WebSocket tunnels whose caller or target left, or that policy now denies, close.
  gw.closeTunnels(
    (t) =>
      !byId.has(t.caller.agentId) || !byId.has(t.targetId) || policies.decide(t.caller.fqdn, t.fqdn).effect === 'deny',
  );
}

// Made on the first state: HTTPS when the primary serves HTTPS (TLS 1.3, client certificates
// requested and checked by the gateway as on the main port), else plain HTTP.
let server: Server | undefined;
function makeServer(tls: PlaneState['tls'], headersTimeoutMs: number): Server {
  const onRequest = (req: IncomingMessage, res: ServerResponse) => void gw.handle(req, res);
  // Deadlines are checked every `connectionsCheckingInterval` (30 s unless told): as on the main port.
  const checks = { connectionsCheckingInterval: Math.min(1000, headersTimeoutMs / 2) };
  const srv: Server = tls
    ? createHttpsServer(
        {
          cert: tls.cert,
          key: tls.key,
          minVersion: 'TLSv1.3',
          requestCert: true,
          rejectUnauthorized: false,
          ...checks,
        },
        onRequest,
      )
    : createServer(checks, onRequest);
  srv.keepAliveTimeout = 65_000;
  srv.headersTimeout = headersTimeoutMs;
  listenForUpgrades(srv, (req, socket, head) => void gw.upgrade(req, socket, head));
  return srv;
}
let ready = false;
process.on('message', (m: ToWorker | 'server' | 'socket', handle?: unknown) => {
  if (m === 'server') {
    if (!server) return; // the primary sends the state first
    server.listen(handle as Parameters<Server['listen']>[0], () => send({ t: 'listening' }));
    return;
  }
  if (m === 'socket') {
    server?.emit('connection', handle);
    return;
  }
  switch (m.t) {
    case 'state':
      server ??= makeServer(m.state.tls, m.state.headersTimeoutMs);
      apply(m.state);
      if (!ready) {
        ready = true;
        send({ t: 'ready' });
      }
      return;
    case 'reachable':
      reachable = new Set(m.ids);
      return;
    case 'forget':
      generation++;
      if (m.kind === 'all') cache.clear();
      else for (const [k, v] of cache) if ((m.kind === 'agent' ? v.agentId : v.serial) === m.id) cache.delete(k);
      if (m.kind === 'serial') gw.closeTunnels((t) => t.caller.serial === m.id);
      return;
    case 'verdict':
      verdicts.get(m.ticket)?.(m.verdict);
      return;
    default: {
      const w = waiting.get(m.id);
      if (w) {
        waiting.delete(m.id);
        w(m);
      }
    }
  }
});

process.on('SIGTERM', () => {
  server?.close();
  void upstreams.close().then(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
process.on('disconnect', () => process.exit(0));
