/**
 * The data plane: one undici Pool per upstream origin, a dispatch handler that streams the
 * upstream answer straight into the client's socket (backpressure both ways), header hygiene,
 * timeouts, retries for idempotent methods and agent-card / Location rewriting.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { Transform, type Readable } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import { toGatewayUrl } from './route.js';

export interface Timeouts {
  connectMs: number;
  firstByteMs: number;
  idleMs: number;
}

/** Outbound TLS: the ANS CA bundle and the agent FQDN as the identity to check. */
export interface TlsTrust {
  caPem: () => string;
}

export interface UpstreamsOptions {
  timeouts: () => Timeouts;
  tls: TlsTrust;
  connectionsPerOrigin?: number;
}

/** Pools per `<origin> <servername>`; HTTPS pools verify the agent's ANS certificate. */
export class Upstreams {
  private readonly pools = new Map<string, Pool>();
  private caPem: string | undefined;

  constructor(private readonly opts: UpstreamsOptions) {}

  pool(origin: string, fqdn: string): Pool {
    const key = `${origin} ${fqdn}`;
    let p = this.pools.get(key);
    if (p) return p;
    const t = this.opts.timeouts();
    const tls = origin.startsWith('https:');
    if (tls) this.caPem ??= this.opts.tls.caPem();
    p = new Pool(origin, {
      connections: this.opts.connectionsPerOrigin ?? 128,
      pipelining: 1,
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 60_000,
      headersTimeout: t.firstByteMs,
      bodyTimeout: t.idleMs,
      connect: {
        timeout: t.connectMs,
        ...(tls
          ? {
              ca: this.caPem,
              servername: fqdn,
              rejectUnauthorized: true,
              // The agent proves the name it is registered under, whatever address it sits at.
              checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(fqdn, cert),
            }
          : {}),
      },
    });
    this.pools.set(key, p);
    return p;
  }

  /** Drops pools (new timeouts, CA rotation); in-flight requests finish. */
  reset(): void {
    this.caPem = undefined;
    const old = [...this.pools.values()];
    this.pools.clear();
    for (const p of old) void p.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    const old = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(old.map((p) => p.destroy().catch(() => undefined)));
  }

  get size(): number {
    return this.pools.size;
  }
}

// RFC 9110 7.6.1 hop-by-hop fields, plus the proxy's own and the caller's credential.
const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'authorization',
  'ans-protocol',
  'ans-caller',
  'ans-caller-id',
  'ans-via', // federation: set by the gateway that delivers a relayed call
  'amsp-caller', // federation: relay credentials, re-made for each hop
  'amsp-hop',
  'content-length', // re-added below when the body is passed as is
  'expect', // Node answered 100-continue to the client already; undici refuses the header
  'http2-settings',
]);

function connectionTokens(v: string | string[] | undefined): Set<string> | undefined {
  if (!v) return undefined;
  const s = Array.isArray(v) ? v.join(',') : v;
  if (s === 'keep-alive' || s === 'close' || s === 'Keep-Alive') return undefined;
  return new Set(
    s
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean),
  );
}

export interface Caller {
  agentId: string;
  fqdn: string;
}

/**
 * The request headers for the upstream, as undici's flat array: hop-by-hop fields and our own
 * control headers dropped, the caller's identity added (never its token), X-Forwarded-*.
 */
export function upstreamHeaders(
  req: IncomingMessage,
  caller: Caller,
  host: string,
  bodyLength: number | undefined,
): string[] {
  const raw = req.rawHeaders;
  const drop = connectionTokens(req.headers.connection);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (
      HOP.has(lower) ||
      drop?.has(lower) ||
      lower === 'x-forwarded-for' ||
      lower === 'x-forwarded-host' ||
      lower === 'x-forwarded-proto'
    )
      continue;
    out.push(name, raw[i + 1]!);
  }
  const xff = req.headers['x-forwarded-for'];
  const peer = req.socket.remoteAddress ?? '';
  out.push('host', host);
  out.push('x-forwarded-for', xff ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${peer}` : peer);
  if (req.headers.host) out.push('x-forwarded-host', req.headers.host);
  out.push('x-forwarded-proto', (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http');
  out.push('ans-caller', caller.fqdn, 'ans-caller-id', caller.agentId);
  if (bodyLength !== undefined) out.push('content-length', String(bodyLength));
  return out;
}

export type FailureKind =
  | 'connect' // refused, unreachable, DNS: nothing was sent
  | 'connect-timeout'
  | 'first-byte-timeout'
  | 'idle-timeout'
  | 'reset' // the upstream closed or reset the connection
  | 'tls'
  | 'body-too-large'
  | 'client-timeout'
  | 'client-gone'
  | 'bad-upstream';

export function classify(err: Error & { code?: string }): FailureKind {
  const code = err.code ?? '';
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'connect-timeout';
    case 'UND_ERR_HEADERS_TIMEOUT':
      return 'first-byte-timeout';
    case 'UND_ERR_BODY_TIMEOUT':
      return 'idle-timeout';
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EAI_AGAIN':
    case 'EADDRNOTAVAIL':
      return 'connect';
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return 'reset';
    case 'GW_BODY_TOO_LARGE':
      return 'body-too-large';
    case 'GW_CLIENT_TIMEOUT':
      return 'client-timeout';
    case 'UND_ERR_ABORTED':
    case 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH':
      return 'client-gone';
    default:
      if (/^ERR_TLS|CERT|SSL|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_SSL/.test(code)) return 'tls';
      return 'bad-upstream';
  }
}

/** Whether a failure means the replica is unhealthy (vs. the client's fault). */
export function replicaFault(k: FailureKind): boolean {
  return (
    k === 'connect' ||
    k === 'connect-timeout' ||
    k === 'first-byte-timeout' ||
    k === 'reset' ||
    k === 'tls' ||
    k === 'idle-timeout'
  );
}

/** Safe to send again to another replica: nothing reached the upstream, or the method is idempotent. */
export function retryable(k: FailureKind, method: string, hasBody: boolean): boolean {
  if (k === 'connect' || k === 'connect-timeout') return !hasBody || method === 'GET' || method === 'HEAD';
  if (k === 'reset' || k === 'tls') return !hasBody && IDEMPOTENT.has(method);
  return false;
}

export const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

const RESPONSE_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
]);

export interface Rewrite {
  /** The agent's endpoint URLs (for Location and card URL rewriting). */
  endpoints: readonly string[];
  /** `<public URL>/gw/<fqdn>/` */
  gatewayBase: string;
  /** The upstream URL of this request, origin + path (to resolve relative Locations). */
  upstreamOrigin: string;
  upstreamPath: string;
  /** Buffer a JSON agent card and rewrite its URLs. */
  card: boolean;
}

export interface Outcome {
  status: number; // 0 when nothing was answered
  bytesIn: number;
  bytesOut: number;
  failure: FailureKind | undefined;
  /** Response headers were already sent when the failure happened. */
  headersSent: boolean;
}

const CARD_MAX = 1024 * 1024;

function rewriteLocation(v: string, rw: Rewrite): string {
  let abs: string;
  try {
    abs = new URL(v, rw.upstreamOrigin + rw.upstreamPath).toString();
  } catch {
    return v;
  }
  return toGatewayUrl(abs, rw.endpoints, rw.gatewayBase) ?? v;
}

/** Rewrites the URLs an A2A card (v0.3 and v1.0) hands out so they point at the gateway. */
export function rewriteCard(
  card: Record<string, unknown>,
  rw: Pick<Rewrite, 'endpoints' | 'gatewayBase'>,
): Record<string, unknown> {
  const map = (u: unknown): unknown =>
    typeof u === 'string' ? (toGatewayUrl(u, rw.endpoints, rw.gatewayBase) ?? rw.gatewayBase) : u;
  const out: Record<string, unknown> = { ...card };
  if ('url' in out) out['url'] = map(out['url']);
  for (const k of ['supportedInterfaces', 'additionalInterfaces']) {
    const list = out[k];
    if (Array.isArray(list))
      out[k] = list.map((i: unknown) =>
        i && typeof i === 'object' ? { ...(i as object), url: map((i as { url?: unknown }).url) } : i,
      );
  }
  return out;
}

/**
 * A dispatch handler writing the upstream answer into `res` as it arrives. Resolves `done`
 * exactly once with the outcome; never throws.
 */
class StreamHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private status = 0;
  private bytesOut = 0;
  private cardChunks: Buffer[] | undefined;
  private cardHeaders: Record<string, string | string[] | undefined> | undefined;
  private finished = false;
  private readonly onClose: () => void;

  constructor(
    private readonly res: ServerResponse,
    private readonly rw: Rewrite | undefined,
    private readonly done: (o: {
      status: number;
      bytesOut: number;
      err: Error | undefined;
      headersSent: boolean;
    }) => void,
  ) {
    this.onClose = () => {
      if (!this.finished && !res.writableFinished)
        this.controller?.abort(Object.assign(new Error('client closed the connection'), { code: 'UND_ERR_ABORTED' }));
    };
    res.once('close', this.onClose);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.res.destroyed)
      controller.abort(Object.assign(new Error('client closed the connection'), { code: 'UND_ERR_ABORTED' }));
  }

  onResponseStart(
    _c: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    if (statusCode < 200) return;
    this.status = statusCode;
    if (this.rw?.card && statusCode === 200 && /json/.test(String(headers['content-type'] ?? ''))) {
      this.cardChunks = [];
      this.cardHeaders = headers;
      return;
    }
    const flat: string[] = [];
    let sse = false;
    for (const name in headers) {
      const v = headers[name];
      if (v === undefined || RESPONSE_HOP.has(name)) continue;
      if (name === 'location' || name === 'content-location') {
        const s = String(v);
        flat.push(name, this.rw ? rewriteLocation(s, this.rw) : s);
        continue;
      }
      if (name === 'content-type' && String(v).startsWith('text/event-stream')) sse = true;
      if (Array.isArray(v)) for (const x of v) flat.push(name, x);
      else flat.push(name, v);
    }
    const res = this.res;
    if (res.destroyed) return;
    res.writeHead(statusCode, statusMessage || undefined, flat);
    // Server-sent events must not wait for the first event to show their headers.
    if (sse) res.flushHeaders();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.bytesOut += chunk.length;
    if (this.cardChunks) {
      if (this.bytesOut > CARD_MAX) {
        controller.abort(Object.assign(new Error('agent card too large'), { code: 'GW_CARD_TOO_LARGE' }));
        return;
      }
      this.cardChunks.push(chunk);
      return;
    }
    const res = this.res;
    if (res.destroyed) return;
    if (!res.write(chunk)) {
      controller.pause();
      res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    if (this.cardChunks && this.cardHeaders) {
      this.sendCard(Buffer.concat(this.cardChunks), this.cardHeaders);
    } else {
      this.res.end();
    }
    this.finish(undefined);
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.finish(err);
  }

  private sendCard(body: Buffer, headers: Record<string, string | string[] | undefined>): void {
    let out: Buffer = body;
    try {
      const card = JSON.parse(body.toString('utf8')) as unknown;
      if (card && typeof card === 'object' && !Array.isArray(card) && this.rw) {
        out = Buffer.from(JSON.stringify(rewriteCard(card as Record<string, unknown>, this.rw)));
      }
    } catch {
      /* not JSON after all: pass it on unchanged */
    }
    const flat: string[] = [];
    for (const name in headers) {
      const v = headers[name];
      if (
        v === undefined ||
        RESPONSE_HOP.has(name) ||
        name === 'content-length' ||
        name === 'content-encoding' ||
        name === 'etag'
      )
        continue;
      if (Array.isArray(v)) for (const x of v) flat.push(name, x);
      else flat.push(name, v);
    }
    flat.push('content-length', String(out.length));
    if (!this.res.destroyed) this.res.writeHead(200, flat).end(out);
  }

  private finish(err: Error | undefined): void {
    if (this.finished) return;
    this.finished = true;
    this.res.removeListener('close', this.onClose);
    this.done({ status: this.status, bytesOut: this.bytesOut, err, headersSent: this.res.headersSent });
  }
}

/** Counts request-body bytes, enforces the size limit and a stall timeout. */
export class BodyMeter extends Transform {
  bytes = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly limit: number,
    private readonly idleMs: number,
  ) {
    super();
    this.arm();
  }

  private arm(): void {
    if (this.timer) this.timer.refresh();
    else {
      this.timer = setTimeout(
        () => this.destroy(Object.assign(new Error('request body stalled'), { code: 'GW_CLIENT_TIMEOUT' })),
        this.idleMs,
      );
      this.timer.unref();
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null, d?: Buffer) => void): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      cb(Object.assign(new Error('request body too large'), { code: 'GW_BODY_TOO_LARGE' }));
      return;
    }
    this.arm();
    cb(null, chunk);
  }

  override _flush(cb: () => void): void {
    if (this.timer) clearTimeout(this.timer);
    cb();
  }

  override _destroy(err: Error | null, cb: (e: Error | null) => void): void {
    if (this.timer) clearTimeout(this.timer);
    cb(err);
  }
}

export interface DispatchArgs {
  pool: Dispatcher;
  method: string;
  path: string;
  headers: string[];
  body: Readable | Buffer | null;
  res: ServerResponse;
  rewrite: Rewrite | undefined;
  timeouts: Timeouts;
}

/** One attempt against one upstream; resolves with what happened. */
export function dispatchOnce(
  a: DispatchArgs,
): Promise<{ status: number; bytesOut: number; err: (Error & { code?: string }) | undefined; headersSent: boolean }> {
  return new Promise((resolve) => {
    const handler = new StreamHandler(a.res, a.rewrite, resolve);
    a.pool.dispatch(
      {
        path: a.path,
        method: a.method as Dispatcher.HttpMethod,
        headers: a.headers,
        body: a.body,
        headersTimeout: a.timeouts.firstByteMs,
        bodyTimeout: a.timeouts.idleMs,
        idempotent: IDEMPOTENT.has(a.method) && a.body === null,
        blocking: false,
      },
      handler,
    );
  });
}
