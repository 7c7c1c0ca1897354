/**
 * One gateway call, phase by phase: route -> caller (auth, rate) -> backend -> policy ->
 * human approval -> forward (per attempt: pick a replica, dispatch, record health) -> outcome
 * (metrics, graph, audit). Refusals are typed errors rendered as problem+json.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline, type Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Counter, Histogram } from 'prom-client';
import { isAnsError, type AnsError } from '../errors/index.js';
import { problemType } from '../http/problem.js';
import type { Approvals, Verdict } from './approval.js';
import type { CallAudit, CallBatch, CallRecord } from './audit.js';
import type { AgentBackend, Backends, Protocol, RemoteBackend, RemoteTargets } from './backend.js';
import type { Replica } from './balancer.js';
import { CallerAuth, type VerifiedCaller } from './caller.js';
import { GatewayErrors } from './errors.js';
import type { CallGraph } from './graph.js';
import type { PolicyStore } from './policy-store.js';
import {
  BodyMeter,
  classify,
  dispatchOnce,
  replicaFault,
  retryable,
  upstreamHeaders,
  type FailureKind,
  type Timeouts,
  type Upstreams,
} from './proxy.js';
import { parseGatewayUrl, upstreamPath, type RouteRefusal } from './route.js';
import type { GatewaySettings } from './settings.js';
import { endSocket, tunnel, type TunnelResult } from './upgrade.js';

export interface GatewayMetrics {
  requests: Counter<'status'>;
  duration: Histogram<'status'>;
  ejections: Counter<'target'>;
}

/** A finished call (a refusal before the caller was known has empty caller fields). */
export type Outcome = CallRecord;

/** The parts a Gateway works with; a data-plane worker supplies remote versions of some. */
export interface GatewayParts {
  zone: string; // normalised
  publicUrl: string; // no trailing slash
  settings: () => GatewaySettings;
  auth: Pick<CallerAuth, 'cached' | 'verify' | 'stillActive'> & Partial<Pick<CallerAuth, 'peer'>>;
  /** Per-caller buckets: here, or leased from the main process (a promise only while asking). */
  rate: { take(key: string, nowMs: number): number | Promise<number> };
  backends: Pick<Backends, 'resolveActive' | 'resolveMissing'>;
  /** Federation: next-hop targets and relayed callers (absent: local agents only). */
  remote?: RemoteTargets;
  policies: Pick<PolicyStore, 'current'>;
  approvals: Pick<Approvals, 'full' | 'hold'>;
  upstreams: Pick<Upstreams, 'pool'>;
  audit: Pick<CallAudit, 'record' | 'recordFrom'>;
  graph: Pick<CallGraph, 'note'>;
  /** When set, finished calls go here instead of metrics/graph/audit (data-plane workers). */
  report?: (o: Outcome) => void;
  metrics: GatewayMetrics | undefined;
  now: () => number;
  log?: { error(o: object, msg: string): void };
}

let seq = 0;
const ID_PREFIX = `gw-${process.pid.toString(36)}-${Date.now().toString(36)}-`;

/** The caller's X-Request-Id when it is sane, else a cheap unique one (made only when needed). */
export function requestId(req: IncomingMessage): string {
  const h = req.headers['x-request-id'];
  if (typeof h === 'string' && h.length > 0 && h.length <= 128 && /^[\w.:-]+$/.test(h)) return h;
  return ID_PREFIX + (++seq).toString(36);
}

interface Target {
  origin: string;
  path: string; // endpoint path, no query
  host: string;
}

const PROTOCOLS = new Set(['a2a', 'mcp', 'http']);
const CARD_PATH = /(?:^|\/)\.well-known\/agent(?:-card)?\.json$/;

/** Maps a failure before any answer to the problem the caller gets. */
export function failureError(
  k: FailureKind,
  fqdn: string,
  bodyLimit: number,
  err: Error | undefined,
): AnsError | undefined {
  switch (k) {
    case 'connect':
      return GatewayErrors.unreachable(fqdn, err?.message ?? 'connection refused');
    case 'connect-timeout':
      return GatewayErrors.unreachable(fqdn, 'connect timeout');
    case 'first-byte-timeout':
      return GatewayErrors.upstreamTimeout(fqdn, 'no response headers');
    case 'idle-timeout':
      return GatewayErrors.upstreamTimeout(fqdn, 'response stalled');
    case 'reset':
      return GatewayErrors.badUpstream(fqdn, 'connection reset before an answer');
    case 'tls':
      return GatewayErrors.badUpstream(fqdn, `TLS: ${err?.message ?? 'certificate not trusted'}`);
    case 'body-too-large':
      return GatewayErrors.bodyTooLarge(bodyLimit);
    case 'client-timeout':
      return GatewayErrors.clientTimeout();
    case 'client-gone':
      return undefined;
    default:
      return GatewayErrors.badUpstream(fqdn, err?.message ?? 'bad answer');
  }
}

/** Writes a problem on a raw response (after hijack). */
export function writeRawProblem(
  req: IncomingMessage,
  res: ServerResponse,
  e: AnsError,
  reqId: string,
  extraHeaders: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = problemJson(req, e, reqId);
  const headers: Record<string, string | number> = {
    'content-type': 'application/problem+json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-request-id': reqId,
    ...extraHeaders,
  };
  // A body we did not read would poison the connection: close it after the answer.
  if (!req.complete) headers['connection'] = 'close';
  res.writeHead(e.statusCode, headers).end(body);
}

function problemJson(req: IncomingMessage, e: AnsError, reqId: string): string {
  return JSON.stringify({
    type: problemType(e.code),
    title: TITLE[e.statusCode] ?? 'Error',
    status: e.statusCode,
    detail: e.message,
    code: e.code,
    instance: (req.url ?? '').split('?')[0],
    requestId: reqId,
    ...(e.extra ?? {}),
  });
}

/** Writes a problem on a raw socket (a refused upgrade) and closes it. */
function writeSocketProblem(
  req: IncomingMessage,
  socket: Duplex,
  e: AnsError,
  extraHeaders: Record<string, string> = {},
): void {
  const reqId = requestId(req);
  endSocket(
    socket,
    e.statusCode,
    { 'content-type': 'application/problem+json; charset=utf-8', 'x-request-id': reqId, ...extraHeaders },
    problemJson(req, e, reqId),
  );
}

const TITLE: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  429: 'Too Many Requests',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** Thrown internally to carry a Retry-After. */
class Refusal extends Error {
  constructor(
    readonly error: AnsError,
    readonly headers: Record<string, string> = {},
  ) {
    super(error.message);
  }
}

export interface CallContext {
  caller: VerifiedCaller;
  backend: AgentBackend | RemoteBackend;
  fqdn: string;
  skill: string | undefined;
  started: number;
}

/** An open WebSocket tunnel, closed when its caller or target goes away or policy turns. */
export interface OpenTunnel {
  caller: VerifiedCaller;
  fqdn: string;
  targetId: string;
  close(): void;
}

export class Gateway {
  private readonly targets = new Map<string, Target>();
  readonly tunnels = new Set<OpenTunnel>();
  private readonly lastAuth = new WeakMap<object, { header: string; caller: VerifiedCaller }>();
  private readonly byStatus = new Map<number, { inc(): void; observe(v: number): void }>();
  private readonly timeouts = new WeakMap<GatewaySettings, { plain: Timeouts; streaming: Timeouts }>();
  private readonly bases = new Map<string, string>();

  constructor(readonly p: GatewayParts) {}

  /**
   * The caller of a request (cached verification), rate-limited. Throws typed errors. A caller
   * this connection or the token cache already knows comes back at once, not as a promise: the
   * usual call then runs to its upstream dispatch without yielding.
   */
  caller(authorization: string | undefined, socket?: object): VerifiedCaller | Promise<VerifiedCaller> {
    const now = this.p.now();
    // A keep-alive connection usually repeats its header: compare it instead of hashing it.
    const last = socket ? this.lastAuth.get(socket) : undefined;
    if (last && last.header === authorization && last.caller.expMs > now && this.p.auth.stillActive(last.caller))
      return this.limited(last.caller, now);
    if (authorization === undefined && this.p.auth.peer && (socket as { encrypted?: boolean })?.encrypted) {
      // No token: mutual TLS, the client certificate of the connection.
      return this.p.auth.peer(socket as TLSSocket).then((c) => {
        if (!c) throw GatewayErrors.noCredential();
        return this.limited(c, this.p.now());
      });
    }
    const token = CallerAuth.bearer(authorization);
    const hit = this.p.auth.cached(token, now);
    if (hit) return this.remembered(authorization, socket, hit, now);
    return this.p.auth.verify(token).then((c) => this.remembered(authorization, socket, c, this.p.now()));
  }

  private remembered(
    authorization: string | undefined,
    socket: object | undefined,
    c: VerifiedCaller,
    now: number,
  ): VerifiedCaller | Promise<VerifiedCaller> {
    if (socket && authorization) this.lastAuth.set(socket, { header: authorization, caller: c });
    return this.limited(c, now);
  }

  /** The rate limit's verdict on a known caller. */
  private limited(c: VerifiedCaller, now: number): VerifiedCaller | Promise<VerifiedCaller> {
    const wait = this.p.rate.take(c.agentId, now);
    return typeof wait === 'number' ? allowed(c, wait) : wait.then((w) => allowed(c, w));
  }

  /** `ANY /gw/<fqdn>/<rest>` on the raw request: the data plane's entry point. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = this.p.now();
    let caller: VerifiedCaller | undefined;
    let fqdn = '';
    let skill: string | undefined;
    try {
      const remote = this.p.remote;
      let t = parseGatewayUrl(req.url ?? '', this.p.zone);
      // Federation: a name outside the zone may be in the forwarding table (a next hop).
      if (!t.ok && t.code === 'GW_ERR_OUTSIDE_ZONE' && remote) {
        const r = remote.backend(t.detail.split(' ')[0] ?? '', undefined);
        if (r?.kind === 'remote') t = parseGatewayUrl(req.url ?? '', r.domain);
      }
      if (!t.ok) throw routeError(t, this.p.zone);
      fqdn = t.fqdn;
      const relayed = remote !== undefined && remote.relayed(req);
      const known = relayed ? remote.caller(req, fqdn) : this.caller(req.headers.authorization, req.socket);
      caller = known instanceof Promise ? await known : known;
      const proto = protocolOf(req);
      const b =
        this.p.backends.resolveActive(fqdn, proto) ??
        remote?.backend(fqdn, proto) ??
        (await this.p.backends.resolveMissing(fqdn, started));
      if (b.kind === 'invalid') throw b.error;
      // Relayed to a remote target is transit: peering governs it, not this zone's agent policy.
      if (!(relayed && b.kind === 'remote')) this.authorise(caller, fqdn);
      const settings = this.p.settings();
      const len = contentLength(req);
      if (len !== undefined && len > settings.bodyLimit) throw GatewayErrors.bodyTooLarge(settings.bodyLimit);
      let body: Buffer | undefined;
      if (b.approvalSkills.size > 0) {
        if (!b.allHeld && req.method === 'POST' && hasBody(req)) {
          body = await readBody(req, settings.bodyLimit, settings.requestBodyIdleMs);
          skill = skillOf(body);
        }
        const needs = b.allHeld || (skill !== undefined && b.approvalSkills.has(skill));
        if (needs) await this.approve(req, caller, fqdn, skill, t.rest);
      }
      await this.forward({ caller, backend: b, fqdn, skill, started }, req, res, {
        rest: t.rest,
        search: t.search,
        body,
        card: req.method === 'GET' && CARD_PATH.test(t.rest),
      });
    } catch (e) {
      this.refuse(req, res, e, caller, fqdn, skill, started);
    }
  }

  /**
   * `GET /gw/<fqdn>/<rest>` with `Upgrade: websocket` (local agents): the phases of `handle`
   * (route, caller, rate, backend, policy, approval when every skill needs it), then a tunnel
   * to a replica (upgrade.ts). Recorded once, when the tunnel closes, with status 101 and the
   * bytes each way. A refusal is problem+json on the socket, which then closes.
   */
  async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const started = this.p.now();
    let caller: VerifiedCaller | undefined;
    let fqdn = '';
    socket.on('error', () => undefined);
    try {
      const t = parseGatewayUrl(req.url ?? '', this.p.zone);
      if (!t.ok) throw routeError(t, this.p.zone);
      fqdn = t.fqdn;
      if (req.method !== 'GET') throw GatewayErrors.badHeader('Upgrade');
      caller = await this.caller(req.headers.authorization, req.socket);
      const b =
        this.p.backends.resolveActive(fqdn, protocolOf(req)) ?? (await this.p.backends.resolveMissing(fqdn, started));
      if (b.kind !== 'agent') throw b.kind === 'invalid' ? b.error : GatewayErrors.unknownAgent(fqdn);
      this.authorise(caller, fqdn);
      if (b.allHeld) await this.approve(req, caller, fqdn, undefined, t.rest);
      const s = this.p.settings();
      const sessionKey =
        headerString(req.headers['mcp-session-id']) ?? headerString(req.headers['ans-session']) ?? caller.agentId;
      const tried = new Set<Replica>();
      let out: TunnelResult = { status: 0, bytesIn: 0, bytesOut: 0, err: undefined, answered: false };
      let failure: FailureKind | undefined;
      for (let attempt = 1; attempt <= s.maxAttempts; attempt++) {
        const r = b.balancer.pick(this.p.now(), sessionKey, tried);
        if (!r) break;
        tried.add(r);
        const tg = this.targetOf(r.url);
        let open: OpenTunnel | undefined;
        b.balancer.start(r);
        out = await tunnel({
          pool: this.p.upstreams.pool(tg.origin, fqdn),
          path: upstreamPath(tg.path, t.rest, t.search),
          headers: upstreamHeaders(req, caller, tg.host, undefined),
          client: socket,
          head,
          firstByteMs: s.firstByteTimeoutMs,
          onOpen: (close) => {
            open = { caller: caller!, fqdn, targetId: b.agent.id, close };
            this.tunnels.add(open);
          },
        });
        if (open) this.tunnels.delete(open);
        failure = out.err ? classify(out.err) : undefined;
        const gatewayish = !failure && (out.status === 502 || out.status === 503 || out.status === 504);
        b.balancer.done(r, !(failure && replicaFault(failure)) && !gatewayish, this.p.now());
        if (!failure) break;
        const again =
          !out.answered &&
          !socket.destroyed &&
          retryable(failure, 'GET', false) &&
          attempt < s.maxAttempts &&
          tried.size < b.balancer.replicas.length;
        if (!again) break;
      }
      let status = out.status;
      if (failure || status === 0) {
        const err = failure
          ? failureError(failure, fqdn, s.bodyLimit, out.err)
          : GatewayErrors.unreachable(fqdn, 'no replica available');
        if (out.answered || !err) socket.destroy();
        else {
          writeSocketProblem(req, socket, err);
          status = err.statusCode;
        }
      }
      this.outcome(
        caller,
        fqdn,
        b.agent.id,
        undefined,
        'GET',
        req.url ?? '',
        status,
        failure,
        out.bytesIn,
        out.bytesOut,
        started,
      );
    } catch (e) {
      const { err, headers } = this.problemOf(e, fqdn);
      writeSocketProblem(req, socket, err, headers);
      this.outcome(
        caller,
        fqdn,
        undefined,
        undefined,
        req.method ?? 'GET',
        req.url ?? '',
        err.statusCode,
        undefined,
        0,
        0,
        started,
      );
    }
  }

  /** Closes the open tunnels that `match` picks; returns how many. */
  closeTunnels(match: (t: OpenTunnel) => boolean): number {
    let n = 0;
    for (const t of this.tunnels)
      if (match(t)) {
        this.tunnels.delete(t);
        t.close();
        n++;
      }
    return n;
  }

  /** Policy: throws 403 when the caller may not call `fqdn`. */
  authorise(caller: VerifiedCaller, fqdn: string): void {
    const d = this.p.policies.current.decide(caller.fqdn, fqdn);
    if (d.effect === 'deny') throw GatewayErrors.denied(caller.fqdn, fqdn, d.why);
  }

  /** Holds the call for a human; throws 403/504 unless approved. */
  async approve(
    req: IncomingMessage,
    caller: VerifiedCaller,
    fqdn: string,
    skill: string | undefined,
    path: string,
  ): Promise<void> {
    if (this.p.approvals.full()) throw GatewayErrors.tooManyApprovals();
    const { ticket, verdict } = await this.p.approvals.hold(
      {
        caller: caller.fqdn,
        callerId: caller.agentId,
        target: fqdn,
        skill: skill ?? null,
        method: req.method ?? 'GET',
        path: `/${path}`,
      },
      req.socket,
    );
    const v: Verdict = await verdict;
    if (v === 'approved') return;
    if (v === 'denied') throw GatewayErrors.approvalDenied(ticket.id);
    throw GatewayErrors.approvalTimeout(ticket.id); // timeout; or cancelled, and the caller is gone anyway
  }

  /** Renders a refusal as problem+json on the raw response and records it. */
  refuse(
    req: IncomingMessage,
    res: ServerResponse,
    e: unknown,
    caller: VerifiedCaller | undefined,
    fqdn: string,
    skill: string | undefined,
    started: number,
  ): void {
    const { err, headers } = this.problemOf(e, fqdn);
    if (!res.destroyed && !res.writableEnded) writeRawProblem(req, res, err, requestId(req), headers);
    this.outcome(
      caller,
      fqdn,
      undefined,
      skill,
      req.method ?? 'GET',
      req.url ?? '',
      err.statusCode,
      undefined,
      0,
      0,
      started,
    );
  }

  private problemOf(e: unknown, fqdn: string): { err: AnsError; headers: Record<string, string> } {
    if (e instanceof Refusal) return { err: e.error, headers: e.headers };
    if (isAnsError(e)) return { err: e, headers: {} };
    this.p.log?.error({ err: e }, 'gateway failure');
    return { err: GatewayErrors.badUpstream(fqdn || 'target', 'internal error'), headers: {} };
  }

  /** The dispatch timeouts of these settings (one object per settings and kind of call). */
  private timeoutsOf(s: GatewaySettings, streaming: boolean): Timeouts {
    let t = this.timeouts.get(s);
    if (!t) {
      const base = { connectMs: s.connectTimeoutMs, firstByteMs: s.firstByteTimeoutMs };
      t = { plain: { ...base, idleMs: s.idleTimeoutMs }, streaming: { ...base, idleMs: 0 } };
      this.timeouts.set(s, t);
    }
    return streaming ? t.streaming : t.plain;
  }

  /** `<public URL>/gw/<fqdn>/`, what the agent's own URLs are rewritten to. */
  private gatewayBase(fqdn: string): string {
    let g = this.bases.get(fqdn);
    if (g === undefined) {
      g = `${this.p.publicUrl}/gw/${fqdn}/`;
      if (this.bases.size > 10_000) this.bases.clear();
      this.bases.set(fqdn, g);
    }
    return g;
  }

  private targetOf(url: string): Target {
    let t = this.targets.get(url);
    if (!t) {
      const u = new URL(url);
      t = { origin: u.origin, path: u.pathname === '/' && !url.endsWith('/') ? '' : u.pathname, host: u.host };
      if (this.targets.size > 10_000) this.targets.clear();
      this.targets.set(url, t);
    }
    return t;
  }

  /** Forwards to a replica of the backend (retrying where safe) and records the outcome. */
  async forward(
    ctx: CallContext,
    req: IncomingMessage,
    res: ServerResponse,
    what: { rest: string; search: string; body: Buffer | undefined; card: boolean },
  ): Promise<void> {
    const s = this.p.settings();
    const method = req.method ?? 'GET';
    const rt = this.p.remote;
    const extra =
      rt && (ctx.backend.kind === 'remote' || rt.isRelayedCaller(ctx.caller))
        ? await rt.headers(ctx.caller, ctx.backend)
        : undefined;
    const streamed = what.body === undefined && hasBody(req);
    let meter: BodyMeter | undefined;
    let meterErr: (Error & { code?: string }) | undefined;
    if (streamed) {
      const m = new BodyMeter(s.bodyLimit, s.requestBodyIdleMs);
      meter = m;
      m.on('error', (e: Error & { code?: string }) => {
        meterErr = e;
      });
      req.on('error', (e) => m.destroy(e));
      req.on('aborted', () => m.destroy(Object.assign(new Error('client aborted'), { code: 'UND_ERR_ABORTED' })));
      req.pipe(m);
    }
    // A long-lived event stream (MCP GET, A2A streaming) is not cut for being quiet.
    const accept = req.headers.accept;
    const streaming = accept !== undefined && accept.includes('text/event-stream');
    if (streaming) req.socket.setTimeout(0);
    const timeouts = this.timeoutsOf(s, streaming);
    const b = ctx.backend;
    // The session key matters only when there is a choice of replica.
    const sessionKey =
      b.balancer.replicas.length > 1
        ? (headerString(req.headers['mcp-session-id']) ??
          headerString(req.headers['ans-session']) ??
          ctx.caller.agentId)
        : undefined;
    let tried: Set<Replica> | undefined; // made for a second attempt only
    let status = 0;
    let bytesOut = 0;
    let failure: FailureKind | undefined;
    let lastErr: Error | undefined;
    let headersSent = false;
    for (let attempt = 1; attempt <= s.maxAttempts; attempt++) {
      const r = b.balancer.pick(this.p.now(), sessionKey, tried);
      if (!r) break;
      const t = this.targetOf(r.url);
      const path = upstreamPath(t.path, what.rest, what.search);
      const headers = upstreamHeaders(
        req,
        ctx.caller,
        t.host,
        what.body ? what.body.length : streamed ? contentLength(req) : undefined,
      );
      if (extra) headers.push(...extra);
      b.balancer.start(r);
      const out = await dispatchOnce({
        pool: b.kind === 'remote' ? b.dispatcher : this.p.upstreams.pool(t.origin, ctx.fqdn),
        method,
        path,
        headers,
        body: what.body ?? meter ?? null,
        res,
        rewrite: {
          endpoints: b.endpoints,
          gatewayBase: this.gatewayBase(ctx.fqdn),
          upstreamOrigin: t.origin,
          upstreamPath: path,
          card: what.card,
        },
        timeouts,
      });
      status = out.status;
      bytesOut = out.bytesOut;
      headersSent = out.headersSent;
      lastErr = out.err;
      failure = out.err ? classify(out.err) : undefined;
      if (meterErr && (meterErr.code === 'GW_BODY_TOO_LARGE' || meterErr.code === 'GW_CLIENT_TIMEOUT'))
        failure = classify(meterErr);
      const gatewayish = !failure && (status === 502 || status === 503 || status === 504);
      b.balancer.done(r, !(failure && replicaFault(failure)) && !gatewayish, this.p.now());
      if (!failure) break;
      const again =
        !headersSent &&
        !res.destroyed &&
        retryable(failure, method, streamed || what.body !== undefined) &&
        attempt < s.maxAttempts &&
        attempt < b.balancer.replicas.length;
      if (!again) break;
      (tried ??= new Set()).add(r);
    }
    if (failure) {
      const err = failureError(failure, ctx.fqdn, s.bodyLimit, lastErr);
      if (headersSent || !err) res.destroy();
      else {
        writeRawProblem(req, res, err, requestId(req));
        status = err.statusCode;
      }
      if (meter) {
        // Let the rest of the body drain; the answer carries Connection: close.
        req.unpipe(meter);
        if (!meter.destroyed) meter.destroy();
        req.resume();
      }
    } else if (status === 0) {
      // No replica to try (all excluded): nothing was answered.
      const err = GatewayErrors.unreachable(ctx.fqdn, 'no replica available');
      writeRawProblem(req, res, err, requestId(req));
      status = err.statusCode;
    }
    this.outcome(
      ctx.caller,
      ctx.fqdn,
      b.kind === 'remote' ? b.id : b.agent.id,
      ctx.skill,
      method,
      req.url ?? '',
      status,
      failure,
      meter?.bytes ?? what.body?.length ?? 0,
      bytesOut,
      ctx.started,
    );
  }

  outcome(
    caller: VerifiedCaller | undefined,
    fqdn: string,
    targetId: string | undefined,
    skill: string | undefined,
    method: string,
    url: string,
    status: number,
    failure: FailureKind | undefined,
    bytesIn: number,
    bytesOut: number,
    started: number,
  ): void {
    const o: Outcome = {
      caller: caller?.fqdn ?? '',
      callerId: caller?.agentId ?? '',
      target: fqdn,
      targetId,
      skill,
      method,
      path: pathOf(url),
      status,
      failure,
      bytesIn,
      bytesOut,
      ms: this.p.now() - started,
      at: started,
    };
    if (this.p.report) this.p.report(o);
    else this.account(o);
  }

  /** Metrics, graph and audit for one finished call here. */
  account(o: Outcome): void {
    this.measure(o.status, o.ms);
    if (!o.caller || !o.target) return;
    this.p.graph.note(o.caller, o.target, o.failure && o.status < 400 ? 0 : o.status, o.ms, o.at + o.ms);
    this.p.audit.record(o);
  }

  /** The same for the calls a data-plane worker sends over, call by call. */
  accountBatch(b: CallBatch): void {
    const keys = b.keys.map((k) => k.split('\t')); // KEY_FIELDS: caller, callerId, target, ...
    for (let i = 0; i < b.at.length; i++) {
      const status = b.status[i]!;
      const ms = b.ms[i]!;
      this.measure(status, ms);
      const k = keys[b.key[i]!]!;
      const caller = k[0];
      const target = k[2];
      if (!caller || !target) continue;
      const failed = b.failures[b.failure[i]!] !== '';
      this.p.graph.note(caller, target, failed && status < 400 ? 0 : status, ms, b.at[i]! + ms);
      this.p.audit.recordFrom(b, i);
    }
  }

  private measure(status: number, ms: number): void {
    const m = this.p.metrics;
    if (!m) return;
    let h = this.byStatus.get(status);
    if (!h) {
      const label = String(status);
      const c = m.requests.labels(label);
      const d = m.duration.labels(label);
      h = { inc: () => c.inc(), observe: (v: number) => d.observe(v) };
      this.byStatus.set(status, h);
    }
    h.inc();
    h.observe(ms / 1000);
  }
}

/** A request target without its query. */
function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** The caller, unless the rate limit says to wait `wait` seconds. */
function allowed(c: VerifiedCaller, wait: number): VerifiedCaller {
  if (wait > 0) throw new Refusal(GatewayErrors.rateLimited(c.fqdn), { 'retry-after': String(wait) });
  return c;
}

/** The refusal for a `/gw/` request target that does not parse. */
function routeError(t: RouteRefusal, zone: string): AnsError {
  return t.code === 'GW_ERR_OUTSIDE_ZONE'
    ? GatewayErrors.outsideZone(t.detail.split(' ')[0] ?? '', zone)
    : t.code === 'GW_ERR_BAD_NAME'
      ? GatewayErrors.badName(t.detail)
      : GatewayErrors.badPath(t.detail);
}

/** `ANS-Protocol`: which of the agent's protocols to call (400 for anything else). */
function protocolOf(req: IncomingMessage): Protocol | undefined {
  const h = req.headers['ans-protocol'];
  if (h === undefined) return undefined;
  const v = String(h).toLowerCase();
  if (!PROTOCOLS.has(v)) throw GatewayErrors.badHeader('ANS-Protocol');
  return v as Protocol;
}

function headerString(v: string | string[] | undefined): string | undefined {
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v[0] : v;
}

export function contentLength(req: IncomingMessage): number | undefined {
  const v = req.headers['content-length'];
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

export function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  if (len !== undefined) return len !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

/** Reads a whole request body, bounded in size and stall time. */
export function readBody(req: IncomingMessage, limit: number, idleMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const meter = new BodyMeter(limit, idleMs);
    const chunks: Buffer[] = [];
    meter.on('data', (c: Buffer) => chunks.push(c));
    pipeline(req, meter, (e) => {
      if (e) {
        const k = classify(e as Error & { code?: string });
        reject(
          k === 'body-too-large'
            ? GatewayErrors.bodyTooLarge(limit)
            : k === 'client-timeout'
              ? GatewayErrors.clientTimeout()
              : e,
        );
      } else resolve(Buffer.concat(chunks));
    });
  });
}

/** `params.metadata.skillId` of an A2A JSON-RPC body, if any. */
export function skillOf(body: Buffer): string | undefined {
  try {
    const j = JSON.parse(body.toString('utf8')) as { params?: { metadata?: { skillId?: unknown } } };
    const s = j?.params?.metadata?.skillId;
    return typeof s === 'string' ? s : undefined;
  } catch {
    return undefined;
  }
}
