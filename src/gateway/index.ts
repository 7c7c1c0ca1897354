/**
 * The AI gateway: `ANY /gw/<fqdn>/<path>` forwards to the agent, `POST /a2a` routes A2A messages
 * by skill or intent, `GET /.well-known/agent-card.json` is the domain's aggregated card, and the
 * admin routes manage policies, approvals, settings and the interaction graph. See README.md.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { Counter, Gauge, Histogram, type Registry as MetricsRegistry } from 'prom-client';
import type { AgentRow, Principal } from '../../ans/index.js';
import type { ClientVerifier } from '../auth/index.js';
import type { Db } from '../store/index.js';
import type { ChangeHandler } from '../events/index.js';
import {
  A2A_METHODS,
  STREAMING_METHODS,
  agentsForSkill,
  aggregatedCard,
  isJsonRpc,
  jsonRpcError,
  routingHints,
  withSkill,
} from './a2a.js';
import { Approvals } from './approval.js';
import { CallAudit, type AuditSink, type CallBatch } from './audit.js';
import { Backends, statusLookup, type AgentBackend, type RemoteTargets } from './backend.js';
import { CallerAuth } from './caller.js';
import { GatewayErrors } from './errors.js';
import { Gateway, type GatewayMetrics } from './gateway.js';
import { CallGraph } from './graph.js';
import { PolicyStore } from './policy-store.js';
import { Upstreams } from './proxy.js';
import { RateLimiter } from './ratelimit.js';
import { normaliseZone } from './route.js';
import { controlRoutes } from './routes.js';
import { listenForUpgrades } from './upgrade.js';
import { DataPlane, type AgentLite } from './plane.js';
import {
  DEFAULT_SETTINGS,
  loadSettings,
  mergeSettings,
  type GatewaySettings,
  type GatewaySettingsPatch,
} from './settings.js';

export {
  parseGatewayUrl,
  checkRest,
  upstreamPath,
  toGatewayUrl,
  inZone,
  normaliseZone,
  type GatewayTarget,
  type RouteRefusal,
} from './route.js';
export {
  PolicySet,
  normalisePattern,
  specificity,
  matches,
  type PolicyRule,
  type Decision,
  type Effect,
} from './policy.js';
export {
  Balancer,
  Replica,
  hash32,
  STRATEGIES,
  type Strategy,
  type ReplicaSpec,
  type HealthOptions,
} from './balancer.js';
export { GatewayErrors } from './errors.js';
export type { AgentBackend, RemoteBackend, RemoteTargets, InvalidBackend, Protocol } from './backend.js';
export type { VerifiedCaller } from './caller.js';
export { DEFAULT_SETTINGS, type GatewaySettings, type GatewaySettingsPatch } from './settings.js';
export { rewriteCard, classify, type FailureKind } from './proxy.js';
export { aggregatedCard, qualifiedSkill } from './a2a.js';
export { CallGraph, type Edge } from './graph.js';
export { Approvals, type Ticket, type Verdict } from './approval.js';
export { policyCli, type PolicyCliOptions, type AdminCall, type PolicyRow } from './cli.js';

/** What the composition root hands the gateway. */
export interface GatewayDeps {
  config: { zone: string; publicUrl: string; host?: string; headersTimeoutMs?: number };
  /** The HTTPS server's certificate and key: data-plane workers then serve HTTPS too. */
  https?: { cert: string; key: string } | undefined;
  db: Db;
  registry: { audit: AuditSink };
  ca: ClientVerifier & { chainPem(): string; rootPem(): string };
  directory: {
    byName(fqdn: string): AgentRow | undefined;
    get(id: string): AgentRow | undefined;
    reachable(id: string): boolean;
    all(): IterableIterator<AgentRow>;
  };
  index: {
    search(
      q: string,
      opts: { k: number; filter?: { allow?: (id: string) => boolean } },
    ): Promise<{ hits: { id: string; score: number }[]; reason?: string }>;
  };
  feed: { subscribe(h: ChangeHandler): () => void };
  auth: { admin(req: FastifyRequest): Promise<Principal> };
  metrics?: MetricsRegistry;
  /** Serve `/gw/` before Fastify's router (default true). */
  fastPath?: boolean;
  /** Start-up defaults (flags); run-time changes come from `PUT /v1/gateway/settings`. */
  options?: Partial<GatewaySettings>;
  /** Federation's next hops (see RemoteTargets); the main port only, not data-plane workers. */
  remote?: RemoteTargets;
  version?: string;
  now?: () => Date;
}

function metricsIn(
  reg: MetricsRegistry | undefined,
  gauges: { approvals: () => number; authCache: () => number; auditDropped: () => number },
): GatewayMetrics | undefined {
  if (!reg) return undefined;
  const requests = new Counter({
    name: 'ans_gateway_requests_total',
    help: 'gateway calls by answered status (0 = no answer)',
    labelNames: ['status'],
    registers: [reg],
  });
  const duration = new Histogram({
    name: 'ans_gateway_request_duration_seconds',
    help: 'gateway call duration, first byte in to last byte out',
    labelNames: ['status'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60],
    registers: [reg],
  });
  const ejections = new Counter({
    name: 'ans_gateway_ejections_total',
    help: 'replicas ejected by passive health checks',
    labelNames: ['target'],
    registers: [reg],
  });
  new Gauge({
    name: 'ans_gateway_approvals_pending',
    help: 'calls held for human approval',
    registers: [reg],
    collect() {
      this.set(gauges.approvals());
    },
  });
  new Gauge({
    name: 'ans_gateway_auth_cache_entries',
    help: 'verified agent tokens cached until exp',
    registers: [reg],
    collect() {
      this.set(gauges.authCache());
    },
  });
  new Gauge({
    name: 'ans_gateway_audit_dropped',
    help: 'call records dropped because the audit queue was full',
    registers: [reg],
    collect() {
      this.set(gauges.auditDropped());
    },
  });
  return { requests, duration, ejections };
}

export const gatewayRoutes: FastifyPluginAsync<GatewayDeps> = async (app, d) => {
  const now = d.now ?? (() => new Date());
  // The data plane reads the wall clock directly (cheap); `now` drives token and ticket times.
  const nowMs = Date.now;
  const zone = normaliseZone(d.config.zone);
  const publicUrl = d.config.publicUrl.replace(/\/+$/, '');
  const base = { ...DEFAULT_SETTINGS, ...(d.options ?? {}) };
  const stored = await loadSettings(d.db);
  let settings: GatewaySettings = mergeSettings(base, stored);
  // Flags are start-up defaults; an admin's stored value (shared by every process) wins. Say so.
  for (const [k, v] of Object.entries(d.options ?? {})) {
    const kept = (stored as Record<string, unknown>)[k];
    if (kept !== undefined && kept !== v && v !== DEFAULT_SETTINGS[k as keyof GatewaySettings])
      app.log.warn({ setting: k, startUp: v, stored: kept }, 'a stored gateway setting overrides the start-up value');
  }
  const current = () => settings;

  const auth = new CallerAuth(d.ca, zone, { isActive: (id) => d.directory.get(id) !== undefined }, now);
  const approvals = new Approvals(d.db, current, now, (t, v, by) =>
    app.log.info(
      { ticket: t.id, caller: t.caller, target: t.target, skill: t.skill, verdict: v, by },
      'approval decided',
    ),
  );
  const audit = new CallAudit(d.db, d.registry.audit, (e) => app.log.error({ err: e }, 'gateway audit batch failed'));
  const metrics = metricsIn(d.metrics, {
    approvals: () => approvals.pending,
    authCache: () => auth.size,
    auditDropped: () => audit.dropped,
  });
  const backends = new Backends(
    d.directory,
    statusLookup(d.db),
    (fqdn) => settings.agents[fqdn]?.balancer ?? settings.balancer,
    () => ({ maxFailures: settings.maxFailures, ejectMs: settings.ejectMs, maxEjectMs: settings.maxEjectMs }),
    (a, r) => {
      metrics?.ejections.inc({ target: a.fqdn });
      app.log.warn(
        { target: a.fqdn, replica: r.url, until: new Date(r.ejectedUntil).toISOString() },
        'replica ejected',
      );
    },
  );
  const policies = new PolicyStore(d.db, zone);
  await policies.reload();
  const upstreams = new Upstreams({
    timeouts: () => ({
      connectMs: settings.connectTimeoutMs,
      firstByteMs: settings.firstByteTimeoutMs,
      idleMs: settings.idleTimeoutMs,
    }),
    tls: { caPem: () => `${d.ca.chainPem()}\n${d.ca.rootPem()}` },
  });
  const graph = new CallGraph(d.db, (e) => app.log.error({ err: e }, 'gateway graph write failed'));
  // One set of buckets for the main port and every data-plane worker (they lease from it).
  const rate = new RateLimiter(current);
  const gw = new Gateway({
    zone,
    publicUrl,
    settings: current,
    auth,
    rate,
    backends,
    ...(d.remote ? { remote: d.remote } : {}),
    policies,
    approvals,
    upstreams,
    audit,
    graph,
    metrics,
    now: nowMs,
    log: app.log,
  });

  // Extra data-plane processes (settings.dataPlane): started, moved or stopped as settings change.
  let plane: DataPlane | undefined;
  let planeOp: Promise<void> = Promise.resolve();
  const planeHost = {
    state: () => ({
      zone,
      publicUrl,
      settings,
      policies: policies.current.list(),
      agents: [...d.directory.all()].map((a): AgentLite => ({
        id: a.id,
        fqdn: a.fqdn,
        label: a.label,
        card: a.card,
        status: 'active',
      })),
      reachable: [...d.directory.all()].filter((a) => d.directory.reachable(a.id)).map((a) => a.id),
      caPem: `${d.ca.chainPem()}\n${d.ca.rootPem()}`,
      tls: d.https,
      headersTimeoutMs: d.config.headersTimeoutMs ?? 10_000,
    }),
    reachable: () => [...d.directory.all()].filter((a) => d.directory.reachable(a.id)).map((a) => a.id),
    verify: (token: string) => auth.verify(token),
    verifyPeer: (x5c: string[], notAfterMs: number) => auth.verifyChain(x5c, notAfterMs),
    approvals,
    statusOf: statusLookup(d.db),
    account: (b: CallBatch) => gw.accountBatch(b),
    ejected: (target: string) => metrics?.ejections.inc({ target }),
    rate: {
      lease: (key: string, want: number) => rate.lease(key, want, nowMs()),
      giveBack: (key: string, n: number) => rate.giveBack(key, n, nowMs()),
      burst: () => settings.rateBurst,
    },
    log: app.log,
  };
  const syncPlane = () => {
    planeOp = planeOp.then(async () => {
      const want = settings.dataPlane;
      if (plane && (!want || want.port !== plane.port || want.workers !== plane.workers)) {
        await plane.stop();
        plane = undefined;
      }
      if (want && !plane && !closing) {
        // Plain HTTP stays on loopback; with TLS the workers listen where the main port does.
        const p = new DataPlane(
          planeHost,
          want.port,
          want.workers,
          d.https ? (d.config.host ?? '127.0.0.1') : '127.0.0.1',
        );
        try {
          await p.start();
          plane = p;
        } catch (e) {
          app.log.error({ err: e, port: want.port }, 'gateway data plane did not start');
          await p.stop();
        }
      } else plane?.refresh();
    });
    return planeOp;
  };

  const applySettings = (patch: GatewaySettingsPatch) => {
    settings = mergeSettings(base, patch);
    backends.invalidate();
    upstreams.reset();
    void syncPlane();
  };

  if (settings.dataPlane) app.addHook('onReady', () => syncPlane());

  let card: Record<string, unknown> | undefined;
  let cardAt = 0;
  d.feed.subscribe(async (c) => {
    switch (c.entity) {
      case 'agent':
        auth.forgetAgent(c.entityId);
        // WebSocket tunnels of an agent that is no longer active (as caller or target) close.
        if (!d.directory.get(c.entityId))
          gw.closeTunnels((t) => t.caller.agentId === c.entityId || t.targetId === c.entityId);
        backends.forgetRefusals();
        card = undefined;
        plane?.broadcast({ t: 'forget', kind: 'agent', id: c.entityId });
        plane?.refresh();
        break;
      case 'certificate':
        auth.forgetSerial(c.entityId);
        gw.closeTunnels((t) => t.caller.serial === c.entityId);
        plane?.broadcast({ t: 'forget', kind: 'serial', id: c.entityId });
        break;
      case 'ca':
        auth.forgetAll();
        upstreams.reset();
        plane?.broadcast({ t: 'forget', kind: 'all', id: '' });
        plane?.refresh();
        break;
      case 'policy':
        await policies.reload();
        gw.closeTunnels((t) => policies.current.decide(t.caller.fqdn, t.fqdn).effect === 'deny');
        plane?.refresh();
        break;
      case 'gateway':
        applySettings(await loadSettings(d.db));
        break;
      case 'approval':
        // A ticket decided here or on another process: release the call if this one holds it.
        await approvals.changed(c.entityId);
        break;
      default:
    }
  });

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    await approvals.cancelAll();
    gw.closeTunnels(() => true);
  });
  app.addHook('onClose', async () => {
    await planeOp;
    await plane?.stop();
    await upstreams.close();
    await audit.flush();
    await graph.close();
  });

  // The lean data plane: `/gw/` requests are taken off the server before Fastify's router, so a
  // forwarded call costs no Fastify request/reply objects, hooks or child logger. Everything
  // else goes to Fastify as before. The Fastify route below serves the same handler when the
  // fast path is off (`fastPath: false`).
  if (d.fastPath !== false) {
    const server = app.server;
    const fastify = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const url = req.url;
      if (url !== undefined && url.charCodeAt(1) === 103 && url.startsWith('/gw/') && !closing) {
        void gw.handle(req, res);
        return;
      }
      for (const l of fastify) l.call(server, req, res);
    });
  }

  // WebSocket upgrades under /gw/ (any other upgrade request is served as plain HTTP).
  listenForUpgrades(app.server, (req, socket, head) => {
    if (closing) socket.destroy();
    else void gw.upgrade(req, socket, head);
  });

  // The data plane through Fastify: bodies are not parsed, they stream through.
  await app.register(async (plane) => {
    plane.removeAllContentTypeParsers();
    plane.addContentTypeParser('*', (_req, _payload, done) => done(null));
    plane.all('/gw/*', { schema: { hide: true } }, (req, reply) => {
      reply.hijack();
      return gw.handle(req.raw, reply.raw);
    });
  });

  app.get('/.well-known/agent-card.json', { schema: { tags: ['gateway'] } }, async (_req, reply) => {
    // Rebuilt on any agent change, and every few seconds for liveness (offline agents leave).
    if (!card || nowMs() - cardAt > 5000) {
      card = aggregatedCard(
        [...d.directory.all()].filter((a) => d.directory.reachable(a.id)),
        { zone, publicUrl, version: d.version ?? '0.1.0' },
      );
      cardAt = nowMs();
    }
    return reply.header('cache-control', 'max-age=5').send(card);
  });

  let spread = 0;
  app.post('/a2a', { schema: { tags: ['gateway'], security: [{ bearer: [] }] } }, async (req, reply) => {
    const started = nowMs();
    let caller;
    let fqdn = '';
    let skill: string | undefined;
    try {
      caller = await gw.caller(req.headers.authorization, req.raw.socket);
      const body = req.body;
      if (!isJsonRpc(body)) throw GatewayErrors.badRpc('the body is not a JSON-RPC 2.0 request');
      if (!A2A_METHODS.has(body.method)) {
        return reply.send(
          jsonRpcError(
            body.id,
            -32601,
            `the gateway routes ${[...A2A_METHODS].join(', ')}; address an agent at /gw/<fqdn>/ for ${body.method}`,
          ),
        );
      }
      const hints = routingHints(body);
      let target: AgentBackend | undefined;
      const usable = (a: AgentRow): AgentBackend | undefined => {
        const b = backends.resolveActive(a.fqdn, 'a2a');
        if (!b || b.kind !== 'agent') return undefined;
        return gw.p.policies.current.decide(caller!.fqdn, a.fqdn).effect === 'allow' ? b : undefined;
      };
      if (hints.skillId) {
        const cands = agentsForSkill(hints.skillId, d.directory.all(), (n) => d.directory.byName(n), zone);
        const ok = cands.map((c) => ({ c, b: usable(c.agent) })).filter((x) => x.b);
        if (ok.length === 0) {
          if (cands.length > 0 && cands.every((c) => backends.resolveActive(c.agent.fqdn, 'a2a')?.kind === 'agent')) {
            gw.authorise(caller, cands[0]!.agent.fqdn); // throws the policy refusal
          }
          throw GatewayErrors.noSkill(hints.skillId);
        }
        const pick = ok[spread++ % ok.length]!;
        target = pick.b!;
        skill = pick.c.skill;
      } else if (hints.intent) {
        const r = await d.index.search(hints.intent, { k: 5, filter: { allow: (id) => d.directory.reachable(id) } });
        for (const h of r.hits) {
          const a = d.directory.get(h.id);
          const b = a && usable(a);
          if (b) {
            target = b;
            break;
          }
        }
        if (!target) throw GatewayErrors.noIntentMatch(r.reason ?? 'no reachable agent that this caller may call');
      } else {
        throw GatewayErrors.badRpc('params.metadata needs skillId or intent');
      }
      fqdn = target.agent.fqdn;
      if (target.allHeld || (skill !== undefined && target.approvalSkills.has(skill)))
        await gw.approve(req.raw, caller, fqdn, skill, 'a2a');
      const out = Buffer.from(JSON.stringify(withSkill(body, skill)));
      reply.hijack();
      if (STREAMING_METHODS.has(body.method)) reply.raw.setTimeout(0);
      await gw.forward({ caller, backend: target, fqdn, skill, started }, req.raw, reply.raw, {
        rest: '',
        search: '',
        body: out,
        card: false,
      });
    } catch (e) {
      if (!reply.sent) reply.hijack();
      gw.refuse(req.raw, reply.raw, e, caller, fqdn, skill, started);
    }
  });

  await app.register(controlRoutes, {
    db: d.db,
    admin: (req) => d.auth.admin(req),
    audit: d.registry.audit,
    policies,
    approvals,
    graph,
    settings: current,
    applySettings,
  });
};
