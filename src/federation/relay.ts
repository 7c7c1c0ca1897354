/**
 * Relay forwarding (002 3.4.4, 003 4.6): the gateway's "remote backend" for agents of other
 * domains. A call for a name in the forwarding table goes to the next hop's `/gw/<fqdn>/<rest>`
 * with two credentials (docs/amsp.md section 8):
 *
 * - `AMSP-Caller`: the originating gateway's signed assertion (JWS with x5c) of who the caller is
 *   and which agent it calls; made once per caller/target and reused, carried unchanged by
 *   every hop, checked against the trust anchors (the caller's name must be in the signer's zone);
 * - `AMSP-Hop`: the sending neighbour's JWS (its session key, no x5c) naming the receiver, the
 *   gateways the call came through (`via`) and the hash of the caller assertion.
 *
 * The receiving gateway accepts a relayed call only from an established peer, refuses one whose
 * `via` holds itself (508), forwards again or delivers to its own agent with `ANS-Via`.
 */
import { createHash, type KeyObject } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { decodeJwt } from 'jose';
import { Pool } from 'undici';
import {
  Balancer,
  GatewayErrors,
  type AgentBackend,
  type InvalidBackend,
  type Protocol,
  type RemoteBackend,
  type RemoteTargets,
  type VerifiedCaller,
} from '../gateway/index.js';
import { FedErrors } from './errors.js';
import { verifyWith, type VerifiedSigner } from './identity.js';
import { gatewayUrl } from './local.js';
import { tlsClientOf, type TlsClient } from './mtls.js';
import { normUri } from './path.js';
import type { Route } from './rib.js';

/** Lifetime of a relay credential; a sender reuses one until a minute before it ends. */
const TTL_S = 300;
const REUSE_MARGIN_MS = 60_000;
const SKEW_MS = 30_000;
export const MAX_VIA = 8;
const CACHE_MAX = 10_000;

export interface RelayDeps {
  uri: string;
  now: () => number;
  sign(payload: unknown, withChain: boolean): Promise<string>;
  verifyChained(jws: string): Promise<{ payload: unknown; signer: VerifiedSigner }>;
  /** The established session with a neighbour, if any. */
  session(uri: string): { key: KeyObject; sid: string } | undefined;
  /** The best route to an agent by FQDN. */
  route(fqdn: string): Route | undefined;
  /** Our boot id (the sid a neighbour knows us by). */
  bootId: string;
  /** A route was used for a call (a Level-1 keeps its subscription alive). */
  used?(fqdn: string): void;
  /** PEM roots to trust for https next hops. */
  /** TLS client options for https next hops (our gateway certificate, the trust anchors). */
  peerTls(): { ca: string; cert: string; key: string } | undefined;
  /** Refuses a TLS client that is not the gateway holding `key` (mutual TLS between gateways). */
  checkTls(client: TlsClient, key: KeyObject, peer: string): void;
}

interface Relayed {
  assertion: string;
  via: string[];
  peer: string;
  sid: string;
  target: string;
}

export interface CallerAssertion {
  iss: string;
  sub: string;
  fqdn: string;
  aud: string;
  iat: number;
  exp: number;
}

export interface HopToken {
  iss: string;
  aud: string;
  sid: string;
  via: string[];
  cth: string;
  iat: number;
  exp: number;
}

const sha = (s: string) => createHash('sha256').update(s).digest('base64url');

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' && v.length > 0 && v.length < 64 * 1024 ? v : undefined;
}

const str = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 2048;
const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

export class Relay implements RemoteTargets {
  private readonly pools = new Map<string, Pool>();
  private readonly backends = new Map<string, RemoteBackend>();
  private readonly peerOf = new WeakMap<RemoteBackend, string>();
  private readonly callers = new WeakMap<VerifiedCaller, Relayed>();
  private readonly verified = new Map<string, { caller: VerifiedCaller; info: Relayed }>();
  private readonly assertions = new Map<string, { jws: string; expMs: number }>();
  private readonly hops = new Map<string, { jws: string; expMs: number }>();
  readonly stats = { relayedOut: 0, relayedIn: 0, relayRefused: 0, relayLoops: 0 };

  constructor(private readonly d: RelayDeps) {}

  backend(fqdn: string, protocol: Protocol | undefined): RemoteBackend | InvalidBackend | undefined {
    const r = this.d.route(fqdn);
    if (!r) return undefined;
    if (protocol && !r.record.protocols.includes(protocol))
      return { kind: 'invalid', error: GatewayErrors.noEndpoint(r.record.fqdn, protocol) };
    const key = `${r.peer} ${r.record.id} ${r.record.fqdn} ${protocol ?? ''}`;
    let b = this.backends.get(key);
    if (!b) {
      const url = gatewayUrl(r.peer, r.record.fqdn);
      b = {
        kind: 'remote',
        id: r.record.id,
        fqdn: r.record.fqdn,
        domain: r.record.domain,
        protocol,
        balancer: new Balancer([{ url }]),
        endpoints: [url],
        dispatcher: this.pool(r.peer),
        approvalSkills: new Set(),
        allHeld: false,
      };
      if (this.backends.size >= CACHE_MAX) this.backends.clear();
      this.backends.set(key, b);
      this.peerOf.set(b, r.peer);
    }
    return b;
  }

  relayed(req: IncomingMessage): boolean {
    return req.headers['amsp-hop'] !== undefined;
  }

  isRelayedCaller(c: VerifiedCaller): boolean {
    return this.callers.has(c);
  }

  async caller(req: IncomingMessage, fqdn: string): Promise<VerifiedCaller> {
    try {
      const c = await this.check(req, fqdn);
      this.stats.relayedIn++;
      return c;
    } catch (e) {
      this.stats.relayRefused++;
      if ((e as { code?: string }).code === FedErrors.relayLoop.code) this.stats.relayLoops++;
      throw e;
    }
  }

  private async check(req: IncomingMessage, fqdn: string): Promise<VerifiedCaller> {
    const hop = header(req, 'amsp-hop');
    const assertion = header(req, 'amsp-caller');
    if (!hop || !assertion) throw FedErrors.badRelay('AMSP-Hop and AMSP-Caller are both required');
    const now = this.d.now();
    const key = `${hop} ${assertion}`;
    const hit = this.verified.get(key);
    if (
      hit &&
      hit.caller.expMs > now &&
      hit.info.target === fqdn &&
      this.d.session(hit.info.peer)?.sid === hit.info.sid
    )
      return hit.caller;

    let claimed: { iss?: unknown };
    try {
      claimed = decodeJwt(hop);
    } catch {
      throw FedErrors.badRelay('AMSP-Hop is not a compact JWS');
    }
    if (!str(claimed.iss)) throw FedErrors.badRelay('AMSP-Hop has no iss');
    const peer = normUri(claimed.iss);
    const s = this.d.session(peer);
    if (!s) throw FedErrors.badRelay(`no established AMSP session with ${peer}`);
    this.d.checkTls(tlsClientOf(req.socket), s.key, peer);
    const h = (await verifyWith(s.key, hop).catch(() => {
      throw FedErrors.badRelay('the AMSP-Hop signature does not verify with the peer key');
    })) as Partial<HopToken>;
    if (!str(h.aud) || normUri(h.aud) !== this.d.uri) throw FedErrors.badRelay(`AMSP-Hop is addressed to ${h.aud}`);
    if (!num(h.exp) || !num(h.iat) || h.exp * 1000 <= now || h.iat * 1000 > now + SKEW_MS)
      throw FedErrors.badRelay('AMSP-Hop is expired or not yet valid');
    if (!Array.isArray(h.via) || h.via.length === 0 || h.via.length > MAX_VIA || !h.via.every(str))
      throw FedErrors.badRelay(`via must list 1 to ${MAX_VIA} gateways`);
    const via = h.via.map(normUri);
    if (via.includes(this.d.uri)) throw FedErrors.relayLoop(`${this.d.uri} is already in via`);
    if (new Set(via).size !== via.length) throw FedErrors.relayLoop('via repeats a gateway');
    if (via.at(-1) !== peer) throw FedErrors.badRelay('via must end at the sending neighbour');
    if (h.sid !== s.sid) throw FedErrors.badRelay('AMSP-Hop is from an earlier session of the peer');
    if (h.cth !== sha(assertion)) throw FedErrors.badRelay('AMSP-Hop is for another caller assertion');

    const { payload, signer } = await this.d.verifyChained(assertion).catch((e: unknown) => {
      throw FedErrors.badRelay(`AMSP-Caller: ${e instanceof Error ? e.message : String(e)}`);
    });
    const a = payload as Partial<CallerAssertion>;
    if (!str(a.iss) || normUri(a.iss) !== via[0])
      throw FedErrors.badRelay('AMSP-Caller is not from the first gateway in via');
    if (!str(a.sub) || !str(a.fqdn) || !a.fqdn.endsWith(`.${signer.zone}`))
      throw FedErrors.badRelay(`a gateway of ${signer.zone} cannot vouch for ${String(a.fqdn)}`);
    if (a.aud !== fqdn) throw FedErrors.badRelay(`AMSP-Caller is for ${String(a.aud)}, not ${fqdn}`);
    if (!num(a.exp) || a.exp * 1000 <= now) throw FedErrors.badRelay('AMSP-Caller is expired');

    const caller: VerifiedCaller = {
      generation: 0,
      agentId: a.sub,
      fqdn: a.fqdn,
      serial: '',
      expMs: Math.min(a.exp, h.exp) * 1000,
    };
    const info: Relayed = { assertion, via, peer, sid: s.sid, target: fqdn };
    this.callers.set(caller, info);
    if (this.verified.size >= CACHE_MAX) this.sweep(this.verified, now, (v) => v.caller.expMs);
    this.verified.set(key, { caller, info });
    return caller;
  }

  async headers(c: VerifiedCaller, b: AgentBackend | RemoteBackend): Promise<string[]> {
    const info = this.callers.get(c);
    if (b.kind !== 'remote') return info ? ['ans-via', [...info.via, this.d.uri].join(', ')] : [];
    const peer = this.peerOf.get(b) ?? normUri(new URL(b.endpoints[0]!).origin);
    const via = [...(info?.via ?? []), this.d.uri];
    if (via.length > MAX_VIA) throw FedErrors.relayLoop(`more than ${MAX_VIA} gateways`);
    if (via.includes(peer)) throw FedErrors.relayLoop(`the next hop ${peer} is already in via`);
    const assertion = info?.assertion ?? (await this.assertion(c, b.fqdn));
    const hop = await this.hop(peer, via, assertion);
    this.stats.relayedOut++;
    this.d.used?.(b.fqdn);
    return ['amsp-caller', assertion, 'amsp-hop', hop, ...(b.protocol ? ['ans-protocol', b.protocol] : [])];
  }

  /** Our signed statement that `c` (a local agent) calls `target`: reused until near its end. */
  private async assertion(c: VerifiedCaller, target: string): Promise<string> {
    const key = `${c.agentId} ${c.fqdn} ${target}`;
    const now = this.d.now();
    const hit = this.assertions.get(key);
    if (hit && hit.expMs - now > REUSE_MARGIN_MS) return hit.jws;
    const iat = Math.floor(now / 1000);
    const exp = Math.min(iat + TTL_S, Math.floor(c.expMs / 1000));
    const p: CallerAssertion = { iss: this.d.uri, sub: c.agentId, fqdn: c.fqdn, aud: target, iat, exp };
    const jws = await this.d.sign(p, true);
    if (this.assertions.size >= CACHE_MAX) this.sweep(this.assertions, now, (v) => v.expMs);
    this.assertions.set(key, { jws, expMs: exp * 1000 });
    return jws;
  }

  private async hop(aud: string, via: string[], assertion: string): Promise<string> {
    const cth = sha(assertion);
    const key = `${aud} ${via.join(' ')} ${cth}`;
    const now = this.d.now();
    const hit = this.hops.get(key);
    if (hit && hit.expMs - now > REUSE_MARGIN_MS) return hit.jws;
    const iat = Math.floor(now / 1000);
    const p: HopToken = { iss: this.d.uri, aud, sid: this.d.bootId, via, cth, iat, exp: iat + TTL_S };
    const jws = await this.d.sign(p, false);
    if (this.hops.size >= CACHE_MAX) this.sweep(this.hops, now, (v) => v.expMs);
    this.hops.set(key, { jws, expMs: p.exp * 1000 });
    return jws;
  }

  private sweep<V>(m: Map<string, V>, now: number, exp: (v: V) => number): void {
    for (const [k, v] of m) if (exp(v) <= now + REUSE_MARGIN_MS) m.delete(k);
    if (m.size >= CACHE_MAX) m.clear();
  }

  private pool(peer: string): Pool {
    let p = this.pools.get(peer);
    if (!p) {
      const tls = peer.startsWith('https:');
      p = new Pool(new URL(peer).origin, {
        connections: 64,
        pipelining: 1,
        keepAliveTimeout: 4_000,
        keepAliveMaxTimeout: 60_000,
        connect: { timeout: 5_000, ...(tls ? { ...this.d.peerTls(), rejectUnauthorized: true } : {}) },
      });
      this.pools.set(peer, p);
    }
    return p;
  }

  async close(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    this.backends.clear();
    await Promise.all(all.map((p) => p.close().catch(() => undefined)));
  }
}
