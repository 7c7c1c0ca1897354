/**
 * Data-plane workers: N child processes serving `/gw/` on their own port, so forwarding uses
 * more than one core. The primary keeps everything stateful — token verification, approvals,
 * the store — and pushes the rest (active agents, reachability, policies, settings, CA) to the
 * workers; workers send back finished calls for metrics, graph and audit. The listening socket
 * is opened here and handed to every worker (the kernel spreads connections).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { AgentRow } from '../../ans/index.js';
import { isAnsError } from '../errors/index.js';
import type { Approvals, Ticket, Verdict } from './approval.js';
import type { CallBatch } from './audit.js';
import type { PolicyRule } from './policy.js';
import type { GatewaySettings } from './settings.js';
import type { VerifiedCaller } from './caller.js';
import type { Lease } from './ratelimit.js';

/** The part of an agent a worker needs. */
export type AgentLite = Pick<AgentRow, 'id' | 'fqdn' | 'label' | 'card'> & { status: 'active' };

export interface PlaneState {
  zone: string;
  publicUrl: string;
  settings: GatewaySettings;
  policies: PolicyRule[];
  agents: AgentLite[];
  reachable: string[];
  caPem: string;
  /** With TLS material the workers serve HTTPS (and take ANS client certificates). */
  tls?: { cert: string; key: string } | undefined;
  /** As on the main port: request headers not complete after this long get 408. */
  headersTimeoutMs: number;
}

export type ToWorker =
  | { t: 'state'; state: PlaneState }
  | { t: 'reachable'; ids: string[] }
  | { t: 'forget'; kind: 'agent' | 'serial' | 'all'; id: string }
  | { t: 'verified'; id: number; caller?: VerifiedCaller; error?: { code: string; status: number; message: string } }
  | { t: 'held'; id: number; ticket?: Ticket; error?: 'full' | 'store' }
  | { t: 'verdict'; ticket: string; verdict: Verdict }
  | { t: 'status'; id: number; status: string | undefined }
  | { t: 'leased'; id: number; granted: number; wait: number };

export type FromWorker =
  | { t: 'ready' }
  | { t: 'listening' }
  | { t: 'verify'; id: number; token: string }
  | { t: 'verifyPeer'; id: number; x5c: string[]; notAfterMs: number }
  | {
      t: 'hold';
      id: number;
      ticket: { caller: string; callerId: string; target: string; skill: string | null; method: string; path: string };
    }
  | { t: 'cancel'; ticket: string }
  | { t: 'status'; id: number; fqdn: string }
  | { t: 'calls'; batch: CallBatch }
  | { t: 'eject'; target: string }
  | { t: 'lease'; id: number; key: string }
  | { t: 'unlease'; key: string; n: number };

export interface PlaneHost {
  state(): PlaneState;
  reachable(): string[];
  verify(token: string): Promise<VerifiedCaller>;
  verifyPeer(x5c: string[], notAfterMs: number): Promise<VerifiedCaller>;
  approvals: Pick<Approvals, 'hold' | 'cancel' | 'full'>;
  statusOf(fqdn: string): Promise<string | undefined>;
  /** Finished calls of a worker: metrics, graph, audit. */
  account(b: CallBatch): void;
  ejected(target: string): void;
  /** The callers' token buckets (this process owns them; workers lease tokens). */
  rate: { lease(key: string, want: number): Lease; giveBack(key: string, n: number): void; burst(): number };
  log: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };
}

const WORKER = fileURLToPath(new URL('./worker-entry.mjs', import.meta.url));

export class DataPlane {
  private readonly kids: ChildProcess[] = [];
  private server: Server | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(
    private readonly host: PlaneHost,
    readonly port: number,
    readonly workers: number,
    private readonly address = '127.0.0.1',
  ) {}

  async start(): Promise<void> {
    // Workers first (each answers 'ready' once it has the state), then the socket.
    await Promise.all(Array.from({ length: this.workers }, () => this.spawn()));
    const server = createServer();
    let rr = 0;
    // Until every worker listens on the shared socket, a connection this process accepts is
    // handed to a worker as it is.
    server.on('connection', (sock) => {
      const kid = this.kids[rr++ % this.kids.length];
      if (kid?.connected) kid.send('socket', sock);
      else sock.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: this.port, host: this.address, backlog: 4096 }, () => resolve());
    });
    this.server = server;
    await Promise.all(this.kids.map((k) => this.await(k, 'listening', () => k.send('server', server))));
    // The workers hold the socket now; this process stops accepting on it.
    server.close();
    this.timer = setInterval(() => this.broadcast({ t: 'reachable', ids: this.host.reachable() }), 1000);
    this.timer.unref();
    this.host.log.info({ port: this.port, workers: this.workers }, 'gateway data plane started');
  }

  private spawn(): Promise<void> {
    const kid = fork(WORKER, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.kids.push(kid);
    kid.on('message', (m: FromWorker) => this.onMessage(kid, m));
    kid.on('exit', (code, signal) => {
      const i = this.kids.indexOf(kid);
      if (i >= 0) this.kids.splice(i, 1);
      if (!this.stopping) this.host.log.error({ code, signal }, 'gateway data-plane worker exited');
    });
    return this.await(kid, 'ready', () => this.send(kid, { t: 'state', state: this.host.state() }));
  }

  /** Does `then`, resolves when the worker says `what` (rejects if it exits first). */
  private await(kid: ChildProcess, what: 'ready' | 'listening', then: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      const onMsg = (m: FromWorker) => {
        if (m.t !== what) return;
        kid.off('message', onMsg);
        kid.off('exit', onExit);
        resolve();
      };
      const onExit = () => reject(new Error(`a data-plane worker exited before '${what}'`));
      kid.on('message', onMsg);
      kid.once('exit', onExit);
      then();
    });
  }

  private send(kid: ChildProcess, m: ToWorker): void {
    if (kid.connected) kid.send(m);
  }

  broadcast(m: ToWorker): void {
    for (const k of this.kids) this.send(k, m);
  }

  /** Pushes fresh state (agents, policies, settings changed). */
  refresh(): void {
    this.broadcast({ t: 'state', state: this.host.state() });
  }

  private onMessage(kid: ChildProcess, m: FromWorker): void {
    switch (m.t) {
      case 'verify':
      case 'verifyPeer':
        (m.t === 'verify' ? this.host.verify(m.token) : this.host.verifyPeer(m.x5c, m.notAfterMs)).then(
          (caller) => this.send(kid, { t: 'verified', id: m.id, caller }),
          (e: unknown) =>
            this.send(kid, {
              t: 'verified',
              id: m.id,
              error: isAnsError(e)
                ? { code: e.code, status: e.statusCode, message: e.message }
                : { code: 'GW_ERR_BAD_CREDENTIAL', status: 401, message: 'the credential is not valid' },
            }),
        );
        return;
      case 'hold': {
        // The ticket id goes back as soon as it is stored (the worker cancels it if its caller
        // leaves), the verdict when it comes.
        if (this.host.approvals.full()) {
          this.send(kid, { t: 'held', id: m.id, error: 'full' });
          return;
        }
        this.host.approvals.hold(m.ticket).then(
          ({ ticket, verdict }) => {
            this.send(kid, { t: 'held', id: m.id, ticket });
            void verdict.then((v) => this.send(kid, { t: 'verdict', ticket: ticket.id, verdict: v }));
          },
          (e: unknown) => {
            this.host.log.error({ err: e }, 'approval ticket not stored');
            this.send(kid, { t: 'held', id: m.id, error: 'store' });
          },
        );
        return;
      }
      case 'cancel':
        void this.host.approvals.cancel(m.ticket);
        return;
      case 'status':
        this.host.statusOf(m.fqdn).then(
          (status) => this.send(kid, { t: 'status', id: m.id, status }),
          () => this.send(kid, { t: 'status', id: m.id, status: undefined }),
        );
        return;
      case 'calls':
        this.host.account(m.batch);
        return;
      case 'eject':
        this.host.ejected(m.target);
        return;
      case 'lease': {
        // A quarter of the burst spread over the workers, at most 1000: few asks at high rates,
        // and little stranded in a worker the caller has left (it gives them back after 1 s).
        const want = Math.max(1, Math.min(1000, Math.floor(this.host.rate.burst() / (4 * this.workers))));
        const l = this.host.rate.lease(m.key, want);
        this.send(kid, { t: 'leased', id: m.id, granted: l.granted, wait: l.wait });
        return;
      }
      case 'unlease':
        this.host.rate.giveBack(m.key, m.n);
        return;
      default:
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    this.server?.close();
    await Promise.all(
      this.kids.map(
        (k) =>
          new Promise<void>((resolve) => {
            if (k.exitCode !== null || k.signalCode !== null) return resolve();
            k.once('exit', () => resolve());
            k.kill('SIGTERM');
            setTimeout(() => k.kill('SIGKILL'), 3000).unref();
          }),
      ),
    );
  }
}
