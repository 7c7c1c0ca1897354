/**
 * The composition root: builds config-driven parts in dependency order and wires the change
 * feed to the projections (active directory, DNS zone, vector index). `buildApp()` does no
 * listening, so tests can build one; `start()` opens the ports.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Server as TlsServer } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import {
  ActiveDirectory,
  Registry,
  Resolver,
  getAgent,
  registryRoutes,
  resolveRoutes,
  type AgentRow,
} from '../ans/index.js';
import { CertificateAuthority, ResponseSigner, caRoutes } from '../ca/index.js';
import { DnsServer, type ZoneAgent } from '../dns/index.js';
import { SemanticIndex, createEmbedder, screenText, type AgentDoc, type Embedder } from '../embeddings/index.js';
import { AdminTokens, Authenticator, adminTokenRoutes } from './auth/index.js';
import type { Config } from './config/index.js';
import { ChangeFeed, currentSeq, type Change } from './events/index.js';
import { buildHttp, createMetrics, registerDomainMetrics } from './http/index.js';
import { openStore, type Db } from './store/index.js';
import { healthRoutes } from './http/health.js';
import { Federation, amspRoutes, registerFederationMetrics } from './federation/index.js';
import { gatewayRoutes } from './gateway/index.js';
import { zoneRoutes } from './http/zone.js';
import { backupRoutes } from './backup/index.js';
import { serverTls } from './tls/index.js';

export const VERSION = '0.1.0';

export interface AppOptions {
  config: Config;
  now?: () => Date;
  /** Overrides the configured embedder (tests pass a cheap one). */
  embedder?: Embedder;
  logger?: Logger;
}

export interface App {
  readonly config: Config;
  readonly db: Db;
  readonly log: Logger;
  readonly http: FastifyInstance;
  readonly registry: Registry;
  readonly ca: CertificateAuthority;
  readonly dns: DnsServer;
  readonly index: SemanticIndex;
  readonly directory: ActiveDirectory;
  readonly feed: ChangeFeed;
  /** Set on the very first start: the bootstrap admin token (also in DIR/admin.token). */
  readonly bootstrapToken: string | undefined;
  start(): Promise<{ httpUrl: string; httpPort: number; dnsPort: number }>;
  stop(): Promise<void>;
  /** Resolves when every change up to now has reached DNS, the directory and the index. */
  settled(): Promise<void>;
}

function writeSecret(path: string, value: string): void {
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** The CA passphrase: flag/env, else the generated DIR/ca.passphrase (mode 0600). */
function caPassphrase(config: Config): string {
  if (config.caPassphrase) return config.caPassphrase;
  const path = join(config.dataDir, 'ca.passphrase');
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const p = randomBytes(32).toString('base64url');
  writeSecret(path, p);
  return p;
}

export function zoneAgentOf(a: AgentRow): ZoneAgent {
  return {
    id: a.id,
    fqdn: a.fqdn,
    version: a.version,
    endpoints: a.card.endpoints.map((e) => ({
      protocol: e.protocol,
      url: e.url,
      ...(e.priority !== undefined ? { priority: e.priority } : {}),
      ...(e.weight !== undefined ? { weight: e.weight } : {}),
    })),
    spkiSha256: a.spkiSha256,
  };
}

export function agentDocOf(a: AgentRow): AgentDoc {
  return {
    id: a.id,
    fqdn: a.fqdn,
    name: a.card.name,
    description: a.card.description,
    skills: a.card.skills.map((s) => ({
      id: s.id,
      name: s.name,
      description: s.description,
      ...(s.tags ? { tags: s.tags } : {}),
    })),
    protocols: [...new Set(a.card.endpoints.map((e) => e.protocol))],
    domain: a.zone,
  };
}

export async function buildApp(opts: AppOptions): Promise<App> {
  const { config } = opts;
  const now = opts.now ?? (() => new Date());
  const log = opts.logger ?? pino({ level: config.logLevel, name: 'ans' });
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });

  const db = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  if (!db.hasVector) log.warn('the database has no pgvector extension: vectors are kept in a real[] column');
  const passphrase = caPassphrase(config);
  const ca = await CertificateAuthority.open({
    db,
    zone: config.zone,
    publicUrl: config.publicUrl,
    passphrase,
    validityDays: config.certValidityDays,
    now,
  }).catch(async (e: unknown) => {
    log.error(
      { err: (e as Error).message },
      'the CA keys cannot be opened with this passphrase: serving without issuing',
    );
    return CertificateAuthority.open({
      db,
      zone: config.zone,
      publicUrl: config.publicUrl,
      passphrase: undefined,
      now,
    });
  });
  if (!ca.canIssue) log.warn('no CA passphrase: certificates cannot be issued until ANS_CA_PASSPHRASE is set');
  const signer = await ResponseSigner.open({
    db,
    passphrase: ca.canIssue ? passphrase : undefined,
    issuer: config.publicUrl,
  });

  const adminTokens = new AdminTokens(db);
  let bootstrapToken: string | undefined;
  if (!(await adminTokens.any())) {
    const made = await db.transaction((tx) => adminTokens.create(tx, 'bootstrap'));
    if (made) {
      bootstrapToken = made.token;
      writeSecret(join(config.dataDir, 'admin.token'), made.token);
    }
  }

  const feed = new ChangeFeed(db, (e) => log.error({ err: e }, 'change feed handler failed'));
  const directory = new ActiveDirectory(config.heartbeatIntervalMs, now);
  const registry = new Registry({
    db,
    zone: config.zone,
    ca,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    screen: (t) => screenText(t, { maxLength: 4000 }),
    now,
    onChange: (seq) => feed.poke(seq),
    onHeartbeat: (id, at) => directory.beat(id, at),
  });

  // Projections are built from one consistent point: everything up to `startSeq` is read in
  // full now, everything after arrives through the feed.
  const startSeq = await currentSeq(db);
  await directory.load(db);
  const dns = new DnsServer({
    zone: config.zone,
    host: config.host,
    port: config.dnsPort,
    publicUrl: config.publicUrl,
    ...(config.nsAddresses.length ? { nsAddresses: [...config.nsAddresses] } : {}),
    notify: [...config.notify],
    transferAcl: [...config.transferAcl],
    tsigKeys: config.tsigKeys.map((k) => ({ ...k })),
    soa: { ...config.soa },
    secondaries: config.secondaries.map((x) => ({ ...x })),
    workers: config.dnsWorkers,
    log: log.child({ component: 'dns' }),
  });
  dns.load([...directory.all()].map(zoneAgentOf), startSeq);

  const embedder =
    opts.embedder ??
    (await createEmbedder({ kind: config.embedder, ...(config.modelDir ? { modelDir: config.modelDir } : {}) }));
  const index = await SemanticIndex.open({ embedder, db, dataDir: config.dataDir });
  // The vector index is slower to update (embedding), so changes are handed to it without
  // waiting and never hold up DNS; it applies one agent's changes in order, different agents'
  // concurrently, and `settled()` waits for it. Changes must be handed over in seq order (the
  // index's saved lastSeq is a low-water mark over what it was given).
  const indexAgent = (id: string, seq: number, row: AgentRow | undefined) => {
    const done = row?.status === 'active' ? index.upsert(agentDocOf(row), seq) : index.remove(id, seq);
    done.catch((e: unknown) => log.error({ err: e, agent: id, seq }, 'vector index update failed'));
  };
  if (index.lastSeq < startSeq) {
    const stale = await db.query<{ entity_id: string; seq: string }>(
      `SELECT entity_id, max(seq) AS seq FROM changes WHERE entity = 'agent' AND seq > $1 GROUP BY entity_id ORDER BY 2`,
      [index.lastSeq],
    );
    log.info({ changes: stale.length, from: index.lastSeq, to: startSeq }, 'catching the vector index up');
    // The directory holds every active agent as of start-up; an agent it lacks is not active.
    for (const s of stale) indexAgent(s.entity_id, Number(s.seq), directory.get(s.entity_id));
  }

  feed.subscribe(async (c: Change) => {
    if (c.entity === 'agent') {
      const a = await getAgent(db, c.entityId);
      const wasActive = directory.get(c.entityId) !== undefined;
      directory.apply(a, c.entityId);
      if (a && a.status === 'active') {
        dns.upsert(zoneAgentOf(a), c.seq);
        indexAgent(c.entityId, c.seq, a);
      } else if (wasActive || !a) {
        dns.remove(c.entityId, c.seq);
        indexAgent(c.entityId, c.seq, undefined);
      }
      // An agent that was never active (a pending registration, a rejection) has nothing to
      // withdraw from DNS or the index; the catch-up path at start-up still removes blindly.
    } else if (c.entity === 'certificate') {
      ca.invalidate(c.entityId);
    } else if (c.entity === 'ca') {
      ca.invalidate();
    }
  });

  const federation = new Federation({ config, ca, directory, feed, log: log.child({ component: 'federation' }), now });
  const resolver = new Resolver({
    remote: (q, o) => federation.searchRemote(q, o),
    search: index,
    directory,
    signer,
    screen: (t) => screenText(t, { maxLength: 1000 }),
    issuer: config.publicUrl,
    now,
  });
  const auth = new Authenticator(adminTokens, ca, config.zone, now);
  const metrics = createMetrics();
  registerDomainMetrics(metrics, {
    agentsByStatus: () => registry.countByStatus(),
    reachableAgents: () => [...directory.all()].filter((a) => directory.reachable(a.id)).length,
    zoneSerial: () => dns.serial,
    feedSeq: () => feed.lastSeq,
    caCounters: () => ({ ...ca.stats }),
    certificatesExpiringWithin: (days) => ca.expiringWithin(days),
  });
  registerFederationMetrics(metrics, federation, { secondarySerials: () => dns.secondarySerials });
  const issueServerTls = (host: string) => serverTls({ ca, dataDir: config.dataDir, host, now });
  const httpsMaterial =
    config.tlsCert && config.tlsKey
      ? { cert: readFileSync(config.tlsCert, 'utf8'), key: readFileSync(config.tlsKey, 'utf8') }
      : config.serverCertHost
        ? await issueServerTls(config.serverCertHost)
        : undefined;
  const http = await buildHttp({
    logger: log.child({ component: 'http' }),
    bodyLimit: config.bodyLimit,
    metrics,
    version: VERSION,
    https: httpsMaterial,
    headersTimeoutMs: config.headersTimeoutMs,
  });
  await http.register(healthRoutes, { db, ready: () => feed.lastSeq >= startSeq });
  await http.register(registryRoutes, { registry, auth, registerPerMinute: config.registerPerMinute });
  await http.register(resolveRoutes, { resolver, signer, perMinute: config.resolvePerMinute });
  await http.register(adminTokenRoutes, { db, auth, audit: registry.audit });
  await http.register(caRoutes(ca, { requireAdmin: (req) => auth.admin(req) }));
  await http.register(zoneRoutes, { auth, masterFile: () => dns.masterFile() });
  await http.register(backupRoutes, { auth, db, audit: registry.audit, now });
  await http.register(gatewayRoutes, {
    config,
    db,
    registry,
    ca,
    directory,
    index,
    feed,
    auth,
    metrics,
    options: config.gateway,
    https: httpsMaterial,
    version: VERSION,
    now,
    remote: federation.relay,
  });
  await http.register(amspRoutes, { federation });

  const timers: NodeJS.Timeout[] = [];
  const every = (ms: number, fn: () => Promise<void>) => {
    const t = setInterval(() => void fn().catch((e: unknown) => log.warn({ err: e }, 'periodic task failed')), ms);
    t.unref();
    timers.push(t);
  };

  let started = false;
  return {
    config,
    db,
    log,
    http,
    registry,
    ca,
    dns,
    index,
    directory,
    feed,
    bootstrapToken,
    async start() {
      const ports = await dns.start();
      await feed.start(startSeq);
      await http.listen({ host: config.host, port: config.httpPort });
      started = true;
      await federation.start();
      every(Math.min(config.heartbeatIntervalMs, 5000), () => directory.sweep(db));
      every(60_000, () => registry.purgeExpiredJti());
      every(60_000, () => index.save());
      // Audit entries are chained in batches (group commit); reads of the log flush first.
      every(250, () => registry.audit.tick());
      const certHost = config.serverCertHost;
      if (certHost) {
        // Renewed in place before it runs out; data-plane worker ports take the new one at restart.
        every(3_600_000, async () => {
          const t = await issueServerTls(certHost);
          if (!t.renewed) return;
          (http.server as unknown as TlsServer).setSecureContext({ cert: t.cert, key: t.key });
          log.info({ host: certHost, notAfter: t.notAfter }, 'HTTPS certificate renewed');
        });
      }
      const retentionMs = config.auditRetentionDays * 86_400_000;
      if (retentionMs > 0) {
        const prune = async () => {
          const n = await registry.audit.prune(new Date(now().getTime() - retentionMs));
          if (n > 0) log.info({ removed: n, days: config.auditRetentionDays }, 'audit retention: old entries removed');
        };
        void prune().catch((e: unknown) => log.warn({ err: (e as Error).message }, 'audit retention failed'));
        every(3_600_000, prune);
      }
      const addr = http.server.address();
      const httpPort = typeof addr === 'object' && addr ? addr.port : config.httpPort;
      const scheme = httpsMaterial ? 'https' : 'http';
      return {
        httpUrl: `${scheme}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${httpPort}`,
        httpPort,
        dnsPort: ports.udpPort,
      };
    },
    async stop() {
      for (const t of timers) clearInterval(t);
      await federation.stop();
      if (started) await http.close();
      await feed.stop();
      await registry.audit.flush().catch((e: unknown) => log.warn({ err: e }, 'audit chaining at shutdown failed'));
      await dns.stop();
      await index.settled();
      await index.save().catch((e: unknown) => log.warn({ err: e }, 'could not save the vector index'));
      await index.close();
      await embedder.close?.();
      await db.close();
    },
    async settled() {
      await feed.waitFor(await currentSeq(db));
      await index.settled();
    },
  };
}
