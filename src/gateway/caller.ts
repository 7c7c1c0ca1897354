/**
 * Caller authentication for the data plane: an agent JWT is verified once and then accepted as
 * a bearer credential until its `exp` (no jti spending). The cache is dropped for an agent on
 * any change to it and for a certificate on its revocation (the change feed), and every call
 * also checks that the caller is still in the active directory, so a revoked caller is refused
 * as soon as this process has seen the change.
 */
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { verifyAgentJwt, type ClientVerifier } from '../auth/index.js';
import { isAnsError, type AnsError } from '../errors/index.js';
import { GatewayErrors } from './errors.js';

export interface VerifiedCaller {
  generation: number;
  agentId: string;
  fqdn: string;
  serial: string;
  expMs: number;
}

/** The client certificate chain a TLS peer sent (leaf first, base64 DER), or undefined. */
export function peerChain(sock: TLSSocket): { x5c: string[]; notAfterMs: number } | undefined {
  const cert = sock.getPeerCertificate(true) as Partial<DetailedPeerCertificate>;
  if (!cert?.raw) return undefined;
  const x5c = [cert.raw.toString('base64')];
  const up = cert.issuerCertificate;
  if (up?.raw && !up.raw.equals(cert.raw)) x5c.push(up.raw.toString('base64'));
  return { x5c, notAfterMs: Date.parse(cert.valid_to ?? '') || 0 };
}

export interface ActiveCheck {
  /** Whether the agent is active right now. */
  isActive(agentId: string): boolean;
}

const MAX_ENTRIES = 100_000;

export class CallerAuth {
  private readonly cache = new Map<string, VerifiedCaller>();
  private readonly inflight = new Map<string, Promise<VerifiedCaller>>();
  /** Callers proven by a TLS client certificate, per connection. */
  private readonly peers = new WeakMap<TLSSocket, VerifiedCaller>();
  /** Bumped whenever entries are dropped, so copies held elsewhere (per connection) go stale. */
  private generation = 0;

  constructor(
    private readonly verifier: ClientVerifier,
    private readonly zone: string,
    private readonly active: ActiveCheck,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** The Bearer token of an Authorization header, or a typed refusal. */
  static bearer(h: string | undefined): string {
    if (!h) throw GatewayErrors.noCredential();
    if (h.length < 8 || (h.charCodeAt(0) | 32) !== 98 || h.slice(0, 7).toLowerCase() !== 'bearer ')
      throw GatewayErrors.noCredential();
    const t = h.slice(7).trim();
    if (t.length === 0 || t.includes(' ')) throw GatewayErrors.noCredential();
    if (t.startsWith('ans_admin_')) throw GatewayErrors.agentsOnly();
    return t;
  }

  /** Synchronous fast path: a cached, unexpired token of an active agent. */
  cached(token: string, nowMs: number): VerifiedCaller | undefined {
    const c = this.cache.get(token);
    if (!c) return undefined;
    if (c.expMs <= nowMs) {
      this.cache.delete(token);
      return undefined;
    }
    if (!this.active.isActive(c.agentId)) throw GatewayErrors.callerNotActive();
    c.generation = this.generation; // it survived every drop so far
    return c;
  }

  async verify(token: string): Promise<VerifiedCaller> {
    const nowMs = this.now().getTime();
    const hit = this.cached(token, nowMs);
    if (hit) return hit;
    let p = this.inflight.get(token);
    if (!p) {
      p = this.verifyFresh(token).finally(() => this.inflight.delete(token));
      this.inflight.set(token, p);
    }
    return p;
  }

  private async verifyFresh(token: string): Promise<VerifiedCaller> {
    let c;
    try {
      c = await verifyAgentJwt(token, { verifier: this.verifier, zone: this.zone, now: this.now });
    } catch (e) {
      if (isAnsError(e))
        throw GatewayErrors.badCredential((e as AnsError).message.replace(/^the agent token is not valid: /, ''));
      throw e;
    }
    if (!this.active.isActive(c.agentId)) throw GatewayErrors.callerNotActive();
    const v: VerifiedCaller = {
      generation: this.generation,
      agentId: c.agentId,
      fqdn: c.fqdn.toLowerCase().replace(/\.$/, ''),
      serial: c.serial,
      expMs: c.exp.getTime(),
    };
    if (this.cache.size >= MAX_ENTRIES) this.sweep();
    this.cache.set(token, v);
    return v;
  }

  /** Drops expired entries; if still full, the oldest half. */
  private sweep(): void {
    const now = this.now().getTime();
    for (const [k, v] of this.cache) if (v.expMs <= now) this.cache.delete(k);
    if (this.cache.size < MAX_ENTRIES) return;
    let n = this.cache.size / 2;
    for (const k of this.cache.keys()) {
      if (n-- <= 0) break;
      this.cache.delete(k);
    }
  }

  /**
   * The caller proven by the TLS client certificate of this connection (mutual TLS), or
   * undefined when the peer sent none. The handshake proved possession of the key; here the
   * chain is checked against the ANS CA and the certificate's status read, once per connection
   * and again after any drop (change feed). Not ours: 401; ours but revoked or expired, or its
   * agent not active: 403.
   */
  async peer(sock: TLSSocket): Promise<VerifiedCaller | undefined> {
    const hit = this.peers.get(sock);
    if (hit && this.stillActive(hit) && hit.expMs > this.now().getTime()) return hit;
    const chain = peerChain(sock);
    if (!chain) return undefined;
    const v = await this.verifyChain(chain.x5c, chain.notAfterMs);
    this.peers.set(sock, v);
    return v;
  }

  /** Checks a client certificate chain (base64 DER, leaf first) as `peer` does; throws typed errors. */
  async verifyChain(x5c: string[], notAfterMs: number): Promise<VerifiedCaller> {
    const generation = this.generation;
    let c;
    try {
      c = await this.verifier.verifyClient(x5c);
    } catch (e) {
      if (isAnsError(e)) throw GatewayErrors.badClientCert((e as AnsError).message);
      throw e;
    }
    if (c.status !== 'good') throw GatewayErrors.clientCertRefused(`the certificate is ${c.status}`);
    if (!this.active.isActive(c.subjectId)) throw GatewayErrors.clientCertRefused('its agent is not active');
    const v: VerifiedCaller = {
      generation,
      agentId: c.subjectId,
      fqdn: c.fqdn.toLowerCase().replace(/\.$/, ''),
      serial: c.serial,
      expMs: notAfterMs,
    };
    return v;
  }

  /** The per-call check a cached caller still needs: its agent is active, its entry not dropped. */
  stillActive(c: VerifiedCaller): boolean {
    return this.generation === c.generation && this.active.isActive(c.agentId);
  }

  forgetAgent(agentId: string): void {
    this.generation++;
    for (const [k, v] of this.cache) if (v.agentId === agentId) this.cache.delete(k);
  }

  forgetSerial(serial: string): void {
    this.generation++;
    for (const [k, v] of this.cache) if (v.serial === serial) this.cache.delete(k);
  }

  forgetAll(): void {
    this.generation++;
    this.cache.clear();
  }

  get size(): number {
    return this.cache.size;
  }
}
