/**
 * DnsServer: the authoritative server the composition root drives (load/upsert/remove from registry
 * events). Single process (workers <= 1) or a primary that keeps the authoritative copy and N
 * cluster workers that share the UDP socket and TCP listener and answer queries; workers get the
 * zone from the primary over IPC and acknowledge each change, and only then is NOTIFY sent (so a
 * secondary that reacts at once never sees the old serial).
 */
import cluster, { type Worker } from 'node:cluster';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIP, type Server } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DNS_ERR_BAD_OPTION, DNS_ERR_WORKER_FAILED } from './errors.js';
import { renderMasterFile } from './masterfile.js';
import { Notifier, parseTarget } from './notify.js';
import { Engine, type EngineConfig } from './respond.js';
import { packZone, Secondary } from './secondary.js';
import { toSerial } from './serial.js';
import { serveTcp, serveUdp, type TcpLimits } from './transport.js';
import type { DnsLogger, DnsOptions, ZoneAgent } from './types.js';
import { agentRecords, apexRecords, normalizeName } from './zone.js';
import type { WorkerInit, ToPrimary, ToWorker } from './worker.js';

const silent: DnsLogger = { info() {}, warn() {}, error() {} };

export const DEFAULTS = {
  agentTtl: 60,
  soaTtl: 300,
  nsTtl: 3600,
  refresh: 300,
  retry: 60,
  expire: 1_209_600,
  minimum: 60,
  journalSize: 2000,
  tcpIdleMs: 10_000,
  tcpMaxConnections: 1000,
} as const;

function engineConfig(opts: DnsOptions): EngineConfig {
  const zone = normalizeName(opts.zone);
  if (!zone || !/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(zone)) throw DNS_ERR_BAD_OPTION(`zone "${opts.zone}"`);
  const nsName = normalizeName(opts.nsName ?? `ns1.${zone}`);
  const unspecified = opts.host === '0.0.0.0' || opts.host === '::';
  const nsAddresses = opts.nsAddresses ?? (isIP(opts.host) && !unspecified ? [opts.host] : ['127.0.0.1']);
  for (const a of nsAddresses) if (!isIP(a)) throw DNS_ERR_BAD_OPTION(`nsAddresses entry "${a}"`);
  const soa = opts.soa ?? {};
  const num = (v: number | undefined, d: number, what: string): number => {
    if (v === undefined) return d;
    if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) throw DNS_ERR_BAD_OPTION(what);
    return v;
  };
  let publicUrl: string;
  try {
    publicUrl = new URL(opts.publicUrl).toString().replace(/\/+$/, '');
  } catch {
    throw DNS_ERR_BAD_OPTION(`publicUrl "${opts.publicUrl}"`);
  }
  return {
    apex: {
      zone,
      nsName,
      nsAddresses,
      soaTtl: num(soa.ttl, DEFAULTS.soaTtl, 'soa.ttl'),
      nsTtl: DEFAULTS.nsTtl,
      refresh: num(soa.refresh, DEFAULTS.refresh, 'soa.refresh'),
      retry: num(soa.retry, DEFAULTS.retry, 'soa.retry'),
      expire: num(soa.expire, DEFAULTS.expire, 'soa.expire'),
      minimum: num(soa.minimum, DEFAULTS.minimum, 'soa.minimum'),
    },
    records: { zone, publicUrl, ttl: num(opts.agentTtl, DEFAULTS.agentTtl, 'agentTtl') },
    journalSize: num(opts.journalSize, DEFAULTS.journalSize, 'journalSize'),
    tsigKeys: opts.tsigKeys ?? [],
    transferAcl: opts.transferAcl ?? [],
  };
}

function listenTcp(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, exclusive: true }, () => {
      server.off('error', reject);
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : port);
    });
  });
}

function bindUdp(sock: UdpSocket, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ port, address: host, exclusive: true }, () => {
      sock.off('error', reject);
      resolve(sock.address().port);
    });
  });
}

/** A port free for TCP and UDP on `host` (port 0 with several workers). */
async function pickPort(host: string): Promise<number> {
  const fam = isIP(host) === 6 ? 'udp6' : 'udp4';
  for (let i = 0; i < 50; i++) {
    const s = createServer();
    const p = await listenTcp(s, 0, host);
    await new Promise<void>((r) => s.close(() => r()));
    const u = createSocket(fam);
    try {
      await bindUdp(u, p, host);
      await new Promise<void>((r) => u.close(() => r()));
      return p;
    } catch {
      u.close();
    }
  }
  throw DNS_ERR_BAD_OPTION('no free port for DNS');
}

function workerExec(): { exec: string; execArgv: string[] } {
  const here = fileURLToPath(import.meta.url);
  const ts = here.endsWith('.ts');
  const exec = here.replace(/server\.(ts|js)$/, ts ? 'worker.ts' : 'worker.js');
  const execArgv: string[] = [];
  if (ts) {
    const loader = createRequire(import.meta.url).resolve('tsx');
    execArgv.push('--import', pathToFileURL(loader).href);
  }
  return { exec, execArgv };
}

export class DnsServer {
  private readonly opts: DnsOptions;
  private readonly log: DnsLogger;
  private readonly cfg: EngineConfig;
  private readonly engine: Engine;
  private readonly notifier: Notifier | null;
  private udp: UdpSocket | null = null;
  private tcp: Server | null = null;
  private closeConns: (() => void) | null = null;
  private workers: Worker[] = [];
  private stopping = false;
  private started = false;
  private port = 0;
  private opSeq = 0;
  private readonly acks = new Map<Worker, number>();
  private readonly greeted = new Set<Worker>();
  private pendingNotify: { op: number; serial: number } | null = null;
  private readonly secondaries: Secondary[];

  constructor(opts: DnsOptions) {
    this.opts = opts;
    this.log = opts.log ?? silent;
    this.cfg = engineConfig(opts);
    this.engine = new Engine(this.cfg, this.log);
    const targets = (opts.notify ?? []).map(parseTarget);
    this.notifier = targets.length
      ? new Notifier(this.cfg.apex.zone, targets, this.engine.keyring.first(), this.log)
      : null;
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535)
      throw DNS_ERR_BAD_OPTION(`port ${opts.port}`);
    this.secondaries = (opts.secondaries ?? []).map(
      (s) =>
        new Secondary(
          s,
          this.engine.keyring,
          (apex, zone) => {
            this.engine.setSecondary(apex, zone);
            this.broadcast({ t: 'secondary', apex, zone: zone && packZone(zone) });
          },
          this.log,
        ),
    );
    for (const s of this.secondaries)
      if (s.apex === this.cfg.apex.zone) throw DNS_ERR_BAD_OPTION(`secondary ${s.apex} is our own zone`);
    if (this.secondaries.length)
      this.engine.onNotify = (zone, peer, key) =>
        this.secondaries.find((s) => s.apex === zone)?.notified(peer, key) ?? false;
  }

  /** Serial of each secondary zone (null while it has none). */
  get secondarySerials(): Record<string, number | null> {
    return Object.fromEntries(this.secondaries.map((s) => [s.apex, s.serial]));
  }

  get serial(): number {
    return this.engine.serial;
  }

  /** Full build at start-up. */
  load(agents: ZoneAgent[], serial: number): void {
    const t0 = Date.now();
    this.engine.load(agents, serial);
    this.log.info({ agents: agents.length, serial: this.engine.serial, ms: Date.now() - t0 }, 'dns: zone built');
    this.broadcast({ t: 'load', agents, serial });
    if (this.started) this.changed();
  }

  upsert(agent: ZoneAgent, serial: number): void {
    this.engine.upsert(agent, serial);
    this.broadcast({ t: 'upsert', agent, serial });
    this.changed();
  }

  remove(agentId: string, serial: number): void {
    this.engine.remove(agentId, serial);
    this.broadcast({ t: 'remove', id: agentId, serial });
    this.changed();
  }

  private broadcast(m: ToWorker): void {
    this.opSeq++;
    for (const w of this.workers) if (w.isConnected() && this.greeted.has(w)) w.send({ ...m, op: this.opSeq });
  }

  /** NOTIFY once every worker serves the change. */
  private changed(): void {
    if (!this.notifier) return;
    this.pendingNotify = { op: this.opSeq, serial: this.engine.serial };
    this.maybeNotify();
  }

  private maybeNotify(): void {
    const p = this.pendingNotify;
    if (!p || !this.notifier) return;
    for (const w of this.workers) if ((this.acks.get(w) ?? 0) < p.op && !w.isDead()) return;
    this.pendingNotify = null;
    this.notifier.notify(p.serial, this.engine.zone.soa);
  }

  async start(): Promise<{ udpPort: number; tcpPort: number }> {
    const n = this.opts.workers ?? 0;
    const host = this.opts.host;
    const limits: TcpLimits = {
      idleMs: this.opts.tcpIdleMs ?? DEFAULTS.tcpIdleMs,
      maxConnections: this.opts.tcpMaxConnections ?? DEFAULTS.tcpMaxConnections,
    };
    this.stopping = false;
    if (n <= 1) {
      const tcp = createServer();
      const tcpPort = await listenTcp(tcp, this.opts.port, host);
      const udp = createSocket({ type: isIP(host) === 6 ? 'udp6' : 'udp4', recvBufferSize: 4 << 20 });
      let udpPort: number;
      try {
        udpPort = await bindUdp(udp, tcpPort, host);
      } catch (err) {
        tcp.close();
        throw err;
      }
      this.tcp = tcp;
      this.udp = udp;
      serveUdp(udp, this.engine, this.log);
      this.closeConns = serveTcp(tcp, this.engine, limits, this.log);
      this.port = tcpPort;
      this.started = true;
      this.log.info({ host, port: tcpPort, zone: this.cfg.apex.zone }, 'dns: listening (udp+tcp)');
      this.maybeNotify();
      for (const s of this.secondaries) s.start();
      return { udpPort, tcpPort: tcpPort };
    }
    if (!cluster.isPrimary) throw DNS_ERR_WORKER_FAILED('workers can only be started from a primary process');
    this.port = this.opts.port === 0 ? await pickPort(host) : this.opts.port;
    const { exec, execArgv } = workerExec();
    cluster.setupPrimary({ exec, execArgv, serialization: 'advanced' });
    const init: WorkerInit = {
      cfg: this.cfg,
      host,
      port: this.port,
      limits,
      notifyRules: this.secondaries.map((s) => s.notifyRule),
    };
    await Promise.all(Array.from({ length: n }, () => this.fork(init)));
    this.started = true;
    this.log.info({ host, port: this.port, workers: n, zone: this.cfg.apex.zone }, 'dns: listening (udp+tcp, workers)');
    this.maybeNotify();
    for (const s of this.secondaries) s.start();
    return { udpPort: this.port, tcpPort: this.port };
  }

  private fork(init: WorkerInit): Promise<void> {
    return new Promise((resolve, reject) => {
      const w = cluster.fork();
      this.workers.push(w);
      this.acks.set(w, 0);
      let ready = false;
      let hello = false;
      // answer only once the zone is in (the load sent after hello carries this op number)
      let loadOp = Number.MAX_SAFE_INTEGER;
      w.on('message', (m: ToPrimary) => {
        if (m.t === 'hello') {
          // the zone as it is now, then every later change in order
          w.send({ t: 'init', init, op: this.opSeq });
          w.send({ t: 'load', agents: [...this.engine.agents.values()], serial: this.engine.serial, op: this.opSeq });
          for (const s of this.secondaries)
            w.send({ t: 'secondary', apex: s.apex, zone: s.current && packZone(s.current), op: this.opSeq });
          loadOp = this.opSeq;
          hello = true;
          this.greeted.add(w);
        } else if (m.t === 'ready') {
          ready = true;
          if ((this.acks.get(w) ?? 0) >= loadOp) resolve();
        } else if (m.t === 'ack') {
          this.acks.set(w, m.op);
          if (ready && m.op >= loadOp) resolve();
          this.maybeNotify();
        } else if (m.t === 'notify') {
          this.secondaries.find((s) => s.apex === m.zone)?.notified(m.peer, m.key);
        } else if (m.t === 'log') {
          this.log[m.level](m.obj, m.msg);
        } else if (m.t === 'fail') {
          reject(DNS_ERR_WORKER_FAILED(m.error));
        }
      });
      w.on('exit', (code, signal) => {
        this.workers = this.workers.filter((x) => x !== w);
        this.acks.delete(w);
        this.greeted.delete(w);
        if (!ready)
          reject(DNS_ERR_WORKER_FAILED(`exited during start (${code ?? signal}${hello ? '' : ', before hello'})`));
        else if (!this.stopping) {
          this.log.error({ code, signal }, 'dns: worker died, restarting');
          this.fork(init).catch((err: Error) => this.log.error({ err: err.message }, 'dns: worker restart failed'));
        }
        this.maybeNotify();
      });
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.started = false;
    this.notifier?.close();
    for (const s of this.secondaries) s.stop();
    this.closeConns?.();
    const waits: Promise<void>[] = [];
    if (this.udp) {
      const u = this.udp;
      waits.push(new Promise((r) => u.close(() => r())));
      this.udp = null;
    }
    if (this.tcp) {
      const t = this.tcp;
      waits.push(new Promise((r) => t.close(() => r())));
      this.tcp = null;
    }
    for (const w of this.workers) {
      waits.push(
        new Promise<void>((r) => {
          const timer = setTimeout(() => w.process.kill('SIGKILL'), 3000);
          w.once('exit', () => {
            clearTimeout(timer);
            r();
          });
          if (w.isConnected()) w.send({ t: 'stop', op: this.opSeq });
          else w.process.kill('SIGTERM');
        }),
      );
    }
    await Promise.all(waits);
    this.workers = [];
  }

  /** RFC 1035 master file of the whole zone. */
  masterFile(): string {
    const cfg = this.cfg;
    const agents = [...this.engine.agents.values()].sort((a, b) => (a.fqdn < b.fqdn ? -1 : a.fqdn > b.fqdn ? 1 : 0));
    return renderMasterFile(
      cfg.apex.zone,
      apexRecords(cfg.apex, this.engine.serial),
      agents.map((a) => agentRecords(a, cfg.records).records),
    );
  }

  /** Answers one request in-process (for `ans dns zone`-style tools and tests). */
  answer(msg: Buffer, tcp = false, peer = '127.0.0.1'): Buffer[] | null {
    return this.engine.answer(msg, tcp, peer);
  }

  get listeningPort(): number {
    return this.port;
  }
}

export { toSerial };
