/**
 * The AMSP speaker: owns the peer table (sessions), the RIB and our signed local records; runs
 * OPEN (dialled and accepted), full sync + END_OF_RIB, incremental UPDATE/WITHDRAW from the
 * change feed, keepalives, hold timers, re-dial with back-off, and CEASE on shutdown.
 * Transport is JSON over undici (mutual TLS with the gateway certificate on https peers, mtls.ts);
 * routes.ts is the receiving side.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { request, type Agent } from 'undici';
import type { AgentRow } from '../../ans/index.js';
import type { Change } from '../events/index.js';
import { FedErrors } from './errors.js';
import { exportPath } from './export.js';
import {
  chainId,
  loadIdentity,
  signJws,
  verifyChained,
  verifyRecordJws,
  verifyWith,
  TrustStore,
  type GatewayIdentity,
  type IdentityIssuer,
} from './identity.js';
import { recordOf } from './local.js';
import { checkTlsClient, peerAgent, peerTlsOptions, type TlsClient } from './mtls.js';
import { Relay } from './relay.js';
import { hasLoop, normUri, validPath } from './path.js';
import { validTopic, type ExportPolicy } from './policy.js';
import { Rib, type BestChange } from './rib.js';
import { searchRoutes, words, type RemoteHit } from './search.js';
import { Session } from './session.js';
import { AMSP_VERSION, type AgentRecord, type Message, type OpenPayload, type Role } from './types.js';
import { parseEnvelope, parseOpen, parseRecord } from './wire.js';

export interface FederationConfig {
  publicUrl: string;
  zone: string;
  dataDir: string;
  role: Role;
  peers: readonly string[];
  peerCas: readonly string[]; // PEM files of trusted roots
  holdTimeMs: number;
  keepaliveMs: number;
  exportPolicy?: ExportPolicy;
  /** Most topics one peer may hold (default 256). */
  maxSubscriptions?: number;
  /** Topics one peer may add per minute (default 600); more are refused with RATE_LIMITED. */
  subscriptionsPerMinute?: number;
}

export interface FederationDeps {
  config: FederationConfig;
  ca: IdentityIssuer;
  directory: { all(): Iterable<AgentRow>; get(id: string): AgentRow | undefined };
  feed: { subscribe(h: (c: Change) => void | Promise<void>): () => void };
  log: Logger;
  now?: () => Date;
}

/** Most certificate chains one peer may send in a session (one per originating gateway). */
const MAX_CHAINS = 4096;

interface Dialer {
  url: string;
  next: number;
  backoff: number;
  busy: boolean;
  lastError?: string;
}

export class Federation {
  readonly rib = new Rib();
  readonly sessions = new Map<string, Session>();
  readonly stats = { loopsDropped: 0, badUpdates: 0, updatesIn: 0, withdrawsIn: 0 };
  readonly uri: string;
  readonly bootId = randomUUID();
  /** The gateway's remote backends (next hops) and relayed callers. */
  readonly relay: Relay;
  private identity: GatewayIdentity | undefined;
  /** True once our own records are signed: OPENs before that are refused (503, retried). */
  private accepting = false;
  /** TLS client options for https peers (our gateway certificate), and the AMSP dispatcher. */
  private peerTls: { ca: string; cert: string; key: string } | undefined;
  private http: Agent | undefined;
  private readonly trust: TrustStore;
  private readonly local = new Map<string, { record: AgentRecord; jws: string }>();
  private readonly nOut = new Map<string, number>();
  private readonly dialers: Dialer[];
  /** Level-1: the topics we subscribed at our Level-2s, with when each was last used. */
  private readonly wantedTopics = new Map<string, number>();
  private readonly now: () => Date;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly log: Logger;

  constructor(private readonly d: FederationDeps) {
    this.now = d.now ?? (() => new Date());
    this.uri = normUri(d.config.publicUrl);
    this.log = d.log;
    this.trust = new TrustStore(d.config.peerCas, [d.ca.rootPem()], this.now);
    this.dialers = d.config.peers.map((url) => ({ url: normUri(url), next: 0, backoff: 250, busy: false }));
    this.relay = new Relay({
      uri: this.uri,
      bootId: this.bootId,
      now: () => this.t(),
      sign: (p, chain) => signJws(this.requireIdentity(), p, chain),
      verifyChained: (jws) => verifyChained(this.trust, jws),
      session: (uri) => {
        const s = this.sessions.get(normUri(uri));
        return s && s.state === 'established' ? { key: s.info.key, sid: s.info.sid } : undefined;
      },
      route: (fqdn) => this.rib.byFqdn(fqdn),
      // A Level-1 keeps what it calls: using a route refreshes a subscription to its name.
      used: (fqdn) => {
        if (this.role === 'l1') this.subscribe([fqdn]);
      },
      peerTls: () => this.peerTls,
      checkTls: (client, key, peer) => checkTlsClient(this.trust, client, key, peer),
    });
  }

  get role(): Role {
    return this.d.config.role;
  }

  private t(): number {
    return this.now().getTime();
  }

  // ---------------------------------------------------------------- lifecycle

  async start(): Promise<void> {
    try {
      this.identity = await loadIdentity({
        ca: this.d.ca,
        dataDir: this.d.config.dataDir,
        zone: this.d.config.zone,
        uri: this.uri,
        now: this.now,
      });
    } catch (e) {
      this.log.error({ err: e instanceof Error ? e.message : String(e) }, 'AMSP disabled: no gateway identity');
      return;
    }
    this.peerTls = peerTlsOptions(this.identity, this.trust);
    this.http = peerAgent(this.peerTls);
    this.unsubscribe = this.d.feed.subscribe((c) =>
      c.entity === 'agent' ? this.onLocalChange(c.entityId) : undefined,
    );
    for (const a of this.d.directory.all()) await this.signLocal(a);
    // Only now: a session opened earlier would get a full table short of the records not yet signed.
    this.accepting = true;
    const tick = Math.max(100, Math.min(1000, Math.floor(this.d.config.keepaliveMs / 3)));
    this.timer = setInterval(() => this.tick(), tick);
    this.timer.unref();
    this.tick();
    this.log.info(
      { uri: this.uri, role: this.role, peers: this.dialers.map((x) => x.url), anchors: this.trust.size },
      'AMSP speaker started',
    );
  }

  /** Clean shutdown: CEASE to every neighbour (best effort, bounded), then stop. */
  async stop(): Promise<void> {
    this.accepting = false;
    if (this.timer) clearInterval(this.timer);
    this.unsubscribe?.();
    const open = [...this.sessions.values()].filter((s) => s.state === 'established');
    await Promise.allSettled(
      open.map(async (s) => {
        s.send({ type: 'NOTIFICATION', code: 'CEASE', reason: 'gateway shutting down' });
        await Promise.race([s.flush(), new Promise((r) => setTimeout(r, 1000))]);
        s.close();
      }),
    );
    this.sessions.clear();
    await this.relay.close();
    await this.http?.close().catch(() => undefined);
  }

  private tick(): void {
    const now = this.t();
    if (this.role === 'l1') this.expireTopics(now);
    for (const s of [...this.sessions.values()]) {
      if (s.state !== 'established') continue;
      if (now - s.lastHeard > s.info.holdTimeMs) {
        this.log.warn({ peer: s.uri }, 'AMSP hold timer expired: routes from this peer are inapplicable');
        void this.post(s.uri, [
          { type: 'NOTIFICATION', code: 'HOLD_TIMER_EXPIRED', reason: 'no message within the hold time' },
        ]).catch(() => undefined);
        this.sessionDown(s, 'inapplicable');
        continue;
      }
      const ka = Math.min(this.d.config.keepaliveMs, Math.floor(s.info.holdTimeMs / 3));
      if (now - s.lastSent >= ka) s.send({ type: 'KEEPALIVE' });
    }
    for (const dl of this.dialers) {
      const s = this.sessions.get(dl.url);
      if (dl.busy || (s && s.state === 'established') || now < dl.next) continue;
      dl.busy = true;
      void this.dial(dl.url)
        .then(() => {
          dl.backoff = 250;
          delete dl.lastError;
        })
        .catch((e: unknown) => {
          // A new reason is a warning; the same one again while the peer stays down is not.
          const err = e instanceof Error ? e.message : String(e);
          this.log[err === dl.lastError ? 'debug' : 'warn']({ peer: dl.url, err }, 'AMSP dial failed');
          dl.lastError = err;
          dl.next = this.t() + dl.backoff;
          // Capped at 2 s: a refused dial costs little, and a peer that comes back (a Level-2
          // restart) is picked up at once instead of a keepalive later.
          dl.backoff = Math.min(dl.backoff * 2, Math.min(2000, Math.max(1000, this.d.config.keepaliveMs)));
        })
        .finally(() => {
          dl.busy = false;
        });
    }
  }

  /**
   * Unused subscriptions expire: a topic no resolve or call used for five hold times is
   * unsubscribed at the Level-2s, which then withdraw what matched only it.
   */
  private expireTopics(now: number): void {
    const ttl = 5 * this.d.config.holdTimeMs;
    const gone = [...this.wantedTopics].filter(([, at]) => now - at > ttl).map(([t]) => t);
    if (gone.length === 0) return;
    for (const t of gone) this.wantedTopics.delete(t);
    this.log.info({ topics: gone.length }, 'AMSP subscriptions expired');
    for (let i = 0; i < gone.length; i += 256)
      for (const s of this.sessions.values())
        if (s.state === 'established' && s.info.role === 'l2')
          s.send({ type: 'UNSUBSCRIBE', topics: gone.slice(i, i + 256) });
  }

  private sessionDown(s: Session, how: 'inapplicable' | 'gone'): void {
    s.close();
    if (this.sessions.get(s.uri) === s) this.sessions.delete(s.uri);
    const changes = how === 'gone' ? this.rib.peerGone(s.uri) : this.rib.peerDown(s.uri);
    this.propagate(changes);
    const dl = this.dialers.find((x) => x.url === s.uri);
    if (dl) dl.next = this.t() + 250;
  }

  // ---------------------------------------------------------------- OPEN

  private async myOpen(aud: string): Promise<string> {
    const id = this.requireIdentity();
    const open: OpenPayload = {
      type: 'OPEN',
      version: AMSP_VERSION,
      gateway: this.uri,
      zone: id.zone,
      role: this.role,
      holdTime: Math.round(this.d.config.holdTimeMs / 1000),
      aud: normUri(aud),
      iat: Math.floor(this.t() / 1000),
      nonce: this.bootId,
    };
    return signJws(id, open, true);
  }

  private requireIdentity(): GatewayIdentity {
    if (!this.identity) throw FedErrors.noIdentity();
    return this.identity;
  }

  private async checkOpen(jws: string, tls: TlsClient): Promise<{ open: OpenPayload; session: Session }> {
    const { payload, signer } = await verifyChained(this.trust, jws);
    const open = parseOpen(payload);
    checkTlsClient(this.trust, tls, signer.publicKey, open.gateway);
    if (normUri(open.aud) !== this.uri) throw FedErrors.untrusted(`OPEN is addressed to ${open.aud}, not ${this.uri}`);
    if (signer.zone !== open.zone.toLowerCase().replace(/\.$/, ''))
      throw FedErrors.untrusted(`certificate is for zone ${signer.zone}, OPEN claims ${open.zone}`);
    if (Math.abs(open.iat - this.t() / 1000) > 300) throw FedErrors.untrusted('OPEN iat is more than 5 minutes off');
    const uri = normUri(open.gateway);
    if (uri === this.uri) throw FedErrors.untrusted('a gateway cannot peer with itself');
    const configured = this.dialers.some((x) => x.url === uri);
    if (this.role === 'l1' && !configured) throw FedErrors.notPeer(uri);
    const holdTimeMs = Math.min(this.d.config.holdTimeMs, open.holdTime * 1000);
    const old = this.sessions.get(uri);
    const session = new Session(
      { uri, zone: signer.zone, role: open.role, key: signer.publicKey, sid: open.nonce, holdTimeMs },
      this.t(),
      this.d.config.subscriptionsPerMinute ?? 600,
      (u, m) => this.post(u, m),
      (s, e) => {
        this.log.warn(
          { peer: s.uri, err: e instanceof Error ? e.message : String(e) },
          'AMSP send failed: session down',
        );
        this.sessionDown(s, 'inapplicable');
      },
    );
    if (old) {
      // The same boot keeps its subscriptions; a restarted peer subscribes afresh.
      if (old.info.sid === open.nonce) {
        session.lastN = old.lastN;
        session.subscribeBudget = old.subscribeBudget;
        for (const t of old.topics) session.topics.add(t);
      }
      old.close();
      // A restarted peer: its old routes stay until its END_OF_RIB, but are not used.
      if (old.info.sid !== open.nonce) this.propagate(this.rib.peerDown(uri));
    }
    this.sessions.set(uri, session);
    return { open, session };
  }

  /** Inbound OPEN (POST /amsp/v1/open): returns our OPEN; the full table follows. */
  async acceptOpen(jws: string, tls: TlsClient = { tls: false }): Promise<string> {
    this.requireIdentity();
    if (!this.accepting) throw FedErrors.starting();
    const { open, session } = await this.checkOpen(jws, tls);
    const reply = await this.myOpen(open.gateway);
    this.log.info({ peer: session.uri, role: open.role, zone: session.info.zone }, 'AMSP session accepted');
    setImmediate(() => void this.fullSync(session));
    return reply;
  }

  private async dial(url: string): Promise<void> {
    const res = await request(`${url}/amsp/v1/open`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ open: await this.myOpen(url) }),
      dispatcher: this.http,
      headersTimeout: 5000,
      bodyTimeout: 5000,
    });
    const body = (await res.body.json()) as { open?: unknown; detail?: unknown };
    if (res.statusCode !== 200 || typeof body.open !== 'string')
      throw new Error(`OPEN refused: ${res.statusCode} ${String(body.detail ?? '')}`);
    const { session } = await this.checkOpen(body.open, { tls: false });
    this.log.info({ peer: session.uri, role: session.info.role }, 'AMSP session established');
    await this.fullSync(session);
  }

  // ---------------------------------------------------------------- messages in

  async receive(jws: string, tls: TlsClient = { tls: false }): Promise<{ n: number }> {
    const parts = jws.split('.');
    if (parts.length !== 3) throw FedErrors.badMessage('envelope must be a compact JWS');
    let claimed: { iss?: unknown };
    try {
      claimed = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { iss?: unknown };
    } catch {
      throw FedErrors.badMessage('envelope payload is not JSON');
    }
    const s = typeof claimed.iss === 'string' ? this.sessions.get(normUri(claimed.iss)) : undefined;
    if (!s || s.state !== 'established') throw FedErrors.noSession(String(claimed.iss));
    checkTlsClient(this.trust, tls, s.info.key, s.uri);
    const env = parseEnvelope(await verifyWith(s.info.key, jws));
    if (normUri(env.aud) !== this.uri) throw FedErrors.badMessage(`envelope addressed to ${env.aud}`);
    if (env.sid !== s.info.sid) throw FedErrors.noSession(s.uri);
    if (env.n <= s.lastN) throw FedErrors.badMessage(`replayed or reordered envelope ${env.n} <= ${s.lastN}`);
    s.lastN = env.n;
    s.lastHeard = this.t();
    s.stats.messagesIn += env.messages.length;
    s.stats.bytesIn += jws.length;
    for (const m of env.messages) {
      if (s.state !== 'established') break;
      await this.handle(s, m);
    }
    return { n: env.n };
  }

  private async handle(s: Session, m: Message): Promise<void> {
    switch (m.type) {
      case 'KEEPALIVE':
        return;
      case 'UPDATE':
        s.stats.updatesIn++;
        return this.onUpdate(s, m.path, m.record);
      case 'WITHDRAW': {
        this.stats.withdrawsIn++;
        s.stats.withdrawsIn++;
        const c = this.rib.withdraw(s.uri, m.id);
        if (c) this.propagate([c]);
        return;
      }
      case 'END_OF_RIB':
        this.propagate(this.rib.purgeInapplicable(s.uri));
        return;
      case 'CHAIN':
        try {
          if (s.chains.size >= MAX_CHAINS) throw FedErrors.badMessage(`more than ${MAX_CHAINS} chains in one session`);
          s.chains.set(chainId(m.x5c), { signer: this.trust.verifyChain(m.x5c), x5c: m.x5c });
        } catch (e) {
          this.stats.badUpdates++;
          this.log.warn({ peer: s.uri, err: e instanceof Error ? e.message : String(e) }, 'AMSP CHAIN rejected');
        }
        return;
      case 'SUBSCRIBE': {
        const max = this.d.config.maxSubscriptions ?? 256;
        const fresh = m.topics.filter((t) => validTopic(t) && !s.topics.has(t));
        if (s.topics.size + fresh.length > max) {
          this.log.warn({ peer: s.uri, topics: s.topics.size + fresh.length }, 'AMSP subscription limit reached');
          s.send({ type: 'NOTIFICATION', code: 'RATE_LIMITED', reason: FedErrors.tooManySubscriptions(max).message });
          return;
        }
        if (!s.subscribeBudget.take(fresh.length, this.t())) {
          this.log.warn({ peer: s.uri, topics: fresh.length }, 'AMSP subscription rate exceeded');
          s.send({
            type: 'NOTIFICATION',
            code: 'RATE_LIMITED',
            reason: FedErrors.subscriptionRate(s.subscribeBudget.perMinute).message,
          });
          return;
        }
        for (const t of fresh) s.topics.add(t);
        if (fresh.length) this.exportAll(s);
        return;
      }
      case 'UNSUBSCRIBE':
        for (const t of m.topics) s.topics.delete(t);
        this.exportAll(s);
        return;
      case 'NOTIFICATION':
        this.log.info({ peer: s.uri, code: m.code, reason: m.reason }, 'AMSP notification');
        if (m.code === 'CEASE') this.sessionDown(s, 'gone');
        else if (m.code !== 'RATE_LIMITED') this.sessionDown(s, 'inapplicable');
        return;
    }
  }

  private async onUpdate(s: Session, path: string[], jws: string): Promise<void> {
    this.stats.updatesIn++;
    if (hasLoop(this.uri, path)) {
      this.stats.loopsDropped++;
      return;
    }
    try {
      if (!validPath(path) || normUri(path[0]!) !== s.uri)
        throw FedErrors.badMessage('PATH must start with the sending neighbour and not repeat');
      const { payload, signer, x5c } = await verifyRecordJws(this.trust, s.chains, jws);
      const rec = parseRecord(payload);
      if (rec.domain !== signer.zone || !rec.fqdn.endsWith(`.${signer.zone}`)) {
        throw FedErrors.badSignature(`a gateway of ${signer.zone} cannot originate ${rec.fqdn}`);
      }
      if (normUri(rec.origin) !== normUri(path.at(-1)!))
        throw FedErrors.badMessage('PATH must end at the record origin');
      if (this.d.directory.get(rec.id)) return;
      const c = this.rib.install({ peer: s.uri, path: path.map(normUri), record: rec, jws, x5c, state: 'active' });
      if (c) this.propagate([c]);
    } catch (e) {
      this.stats.badUpdates++;
      this.log.warn({ peer: s.uri, err: e instanceof Error ? e.message : String(e) }, 'AMSP UPDATE rejected');
    }
  }

  // ---------------------------------------------------------------- messages out

  private async post(uri: string, messages: Message[]): Promise<void> {
    const n = (this.nOut.get(uri) ?? 0) + 1;
    this.nOut.set(uri, n);
    const envelope = { iss: this.uri, aud: uri, sid: this.bootId, n, iat: Math.floor(this.t() / 1000), messages };
    const body = JSON.stringify({ envelope: await signJws(this.requireIdentity(), envelope, false) });
    const s = this.sessions.get(uri);
    if (s) {
      s.lastSent = this.t();
      s.stats.bytesOut += body.length;
    }
    // A loaded peer may take a while over a full table; only the hold time makes it "down".
    const timeout = Math.max(10_000, s?.info.holdTimeMs ?? 0);
    const res = await request(`${uri}/amsp/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      dispatcher: this.http,
      headersTimeout: timeout,
      bodyTimeout: timeout,
    });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`POST messages -> ${res.statusCode}`);
  }

  private async signLocal(a: AgentRow): Promise<void> {
    const record = recordOf(a, this.uri, this.d.config.exportPolicy?.redact ?? []);
    // The chain goes once per session (CHAIN), not in every record.
    this.local.set(a.id, { record, jws: await signJws(this.requireIdentity(), record, 'reference') });
  }

  private async onLocalChange(id: string): Promise<void> {
    const a = this.d.directory.get(id);
    if (a) await this.signLocal(a);
    else this.local.delete(id);
    for (const s of this.sessions.values()) if (s.state === 'established') this.exportOne(s, id);
  }

  private exportOne(s: Session, id: string): void {
    const self = { uri: this.uri, role: this.role };
    const target = { uri: s.uri, role: s.info.role, topics: s.topics };
    const policy = this.d.config.exportPolicy ?? {};
    let path: string[] | null = null;
    let jws = '';
    let x5c: string[] | undefined;
    const mine = this.local.get(id);
    if (mine) {
      path = exportPath(self, target, mine.record, { kind: 'local' }, policy);
      jws = mine.jws;
      x5c = this.requireIdentity().x5c;
    } else {
      const best = this.rib.best(id);
      if (best) {
        path = exportPath(self, target, best.record, { kind: 'learned', peer: best.peer, path: best.path }, policy);
        jws = best.jws;
        x5c = best.x5c;
      }
    }
    const prev = s.advertised.get(id);
    if (path === null) {
      if (prev !== undefined) {
        s.advertised.delete(id);
        s.send({ type: 'WITHDRAW', id });
      }
      return;
    }
    const key = `${path.join(' ')}|${jws}`;
    if (prev === key) return;
    s.advertised.set(id, key);
    if (x5c) {
      const cid = chainId(x5c);
      if (!s.chainsSent.has(cid)) {
        s.chainsSent.add(cid);
        s.send({ type: 'CHAIN', x5c });
      }
    }
    s.send({ type: 'UPDATE', path, record: jws });
  }

  private exportAll(s: Session): void {
    const ids = new Set<string>([
      ...this.local.keys(),
      ...[...this.rib.bestRoutes()].map((r) => r.record.id),
      ...s.advertised.keys(),
    ]);
    for (const id of ids) this.exportOne(s, id);
  }

  private async fullSync(s: Session): Promise<void> {
    if (s.state !== 'established') return;
    s.advertised.clear();
    if (this.role === 'l1' && this.wantedTopics.size)
      s.send({
        type: 'SUBSCRIBE',
        topics: [...this.wantedTopics.keys()].slice(0, this.d.config.maxSubscriptions ?? 256),
      });
    this.exportAll(s);
    s.send({ type: 'END_OF_RIB' });
    await s.flush();
  }

  private propagate(changes: readonly BestChange[]): void {
    if (changes.length === 0) return;
    for (const s of this.sessions.values()) {
      if (s.state !== 'established') continue;
      for (const c of changes) this.exportOne(s, c.id);
    }
  }

  // ---------------------------------------------------------------- queries

  /**
   * Remote agents matching a query, for resolve. On a Level-1 a query also subscribes its
   * words at the Level-2s (on-demand pull), so a repeated query finds what arrived meanwhile.
   */
  searchRemote(query: string, opts: { k: number; domain?: string; protocol?: string }): RemoteHit[] {
    if (this.role === 'l1') this.subscribe(words(query).map((w) => `text:${w}`));
    return searchRoutes(this.rib.bestRoutes(), query, { ...opts, gatewayUri: this.uri });
  }

  subscribe(topics: readonly string[]): void {
    const now = this.t();
    for (const t of topics) if (this.wantedTopics.has(t)) this.wantedTopics.set(t, now);
    const fresh = topics.filter((t) => validTopic(t) && !this.wantedTopics.has(t)).slice(0, 64);
    if (fresh.length === 0) return;
    for (const t of fresh) this.wantedTopics.set(t, now);
    for (const s of this.sessions.values())
      if (s.state === 'established' && s.info.role === 'l2') s.send({ type: 'SUBSCRIBE', topics: fresh });
  }

  /** Next hop for an agent id or FQDN (the gateway forwards there), or undefined if unknown. */
  nextHop(idOrFqdn: string): { nextHop: string; fqdn: string; id: string } | undefined {
    const r = this.rib.best(idOrFqdn) ?? this.rib.byFqdn(idOrFqdn);
    return r ? { nextHop: r.peer, fqdn: r.record.fqdn, id: r.record.id } : undefined;
  }

  view() {
    return {
      gateway: this.uri,
      role: this.role,
      zone: this.identity?.zone ?? this.d.config.zone.replace(/\.$/, ''),
      forwarding: this.rib.forwarding(),
      inapplicable: this.rib
        .allRoutes()
        .filter((r) => r.state === 'inapplicable')
        .map((r) => ({ id: r.record.id, fqdn: r.record.fqdn, peer: r.peer })),
      local: [...this.local.values()].map((l) => ({ id: l.record.id, fqdn: l.record.fqdn, nextHop: null })),
      subscribed: [...this.wantedTopics.keys()],
      peers: [...this.sessions.values()].map((s) => ({
        uri: s.uri,
        role: s.info.role,
        zone: s.info.zone,
        state: s.state,
        holdTime: s.info.holdTimeMs / 1000,
        lastHeard: new Date(s.lastHeard).toISOString(),
        subscriptions: [...s.topics],
        advertised: s.advertised.size,
        ...s.stats,
      })),
      stats: { ...this.stats, ...this.relay.stats },
    };
  }
}
