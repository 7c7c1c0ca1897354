/**
 * A cluster worker: binds the shared UDP socket and TCP listener (the cluster primary owns the
 * handles), keeps its own Engine fed by the primary over IPC, and acknowledges each change.
 */
import cluster from 'node:cluster';
import { createSocket } from 'node:dgram';
import { createServer, isIP } from 'node:net';
import { Engine, type EngineConfig } from './respond.js';
import { acceptsNotify, unpackZone, type NotifyRule, type PackedZone } from './secondary.js';
import { serveTcp, serveUdp, type TcpLimits } from './transport.js';
import type { DnsLogger, ZoneAgent } from './types.js';

export interface WorkerInit {
  cfg: EngineConfig;
  host: string;
  port: number;
  limits: TcpLimits;
  /** Secondary zones: NOTIFYs the worker accepts and passes to the primary. */
  notifyRules: NotifyRule[];
}

export type ToWorker =
  | { t: 'init'; init: WorkerInit }
  | { t: 'load'; agents: ZoneAgent[]; serial: number }
  | { t: 'upsert'; agent: ZoneAgent; serial: number }
  | { t: 'remove'; id: string; serial: number }
  | { t: 'secondary'; apex: string; zone: PackedZone | null }
  | { t: 'stop' };

export type ToPrimary =
  | { t: 'hello' }
  | { t: 'ready' }
  | { t: 'ack'; op: number }
  | { t: 'fail'; error: string }
  | { t: 'notify'; zone: string; peer: string; key: string | null }
  | { t: 'log'; level: 'info' | 'warn' | 'error'; obj: object; msg?: string };

function send(m: ToPrimary): void {
  process.send?.(m);
}

const log: DnsLogger = {
  info: (obj, msg) => send({ t: 'log', level: 'info', obj, msg }),
  warn: (obj, msg) => send({ t: 'log', level: 'warn', obj, msg }),
  error: (obj, msg) => send({ t: 'log', level: 'error', obj, msg }),
};

function run(): void {
  let engine: Engine | null = null;
  let closeConns: (() => void) | null = null;
  const closers: (() => void)[] = [];
  process.on('message', (raw: ToWorker & { op: number }) => {
    try {
      switch (raw.t) {
        case 'init': {
          const { cfg, host, port, limits } = raw.init;
          engine = new Engine(cfg, log);
          const e = engine;
          const rules = raw.init.notifyRules;
          if (rules.length)
            e.onNotify = (zone, peer, key) => {
              const rule = rules.find((r) => r.apex === zone);
              if (!rule || !acceptsNotify(rule, peer, key)) return false;
              send({ t: 'notify', zone, peer, key });
              return true;
            };
          const udp = createSocket({ type: isIP(host) === 6 ? 'udp6' : 'udp4', recvBufferSize: 4 << 20 });
          const tcp = createServer();
          let pending = 2;
          const done = (): void => {
            if (--pending === 0) send({ t: 'ready' });
          };
          udp.once('error', (err) => send({ t: 'fail', error: `udp bind: ${err.message}` }));
          tcp.once('error', (err) => send({ t: 'fail', error: `tcp listen: ${err.message}` }));
          udp.bind({ port, address: host }, done);
          tcp.listen({ port, host }, done);
          serveUdp(udp, e, log);
          closeConns = serveTcp(tcp, e, limits, log);
          closers.push(
            () => udp.close(),
            () => tcp.close(),
          );
          return; // 'ready' answers init
        }
        case 'load':
          engine?.load(raw.agents, raw.serial);
          break;
        case 'upsert':
          engine?.upsert(raw.agent, raw.serial);
          break;
        case 'remove':
          engine?.remove(raw.id, raw.serial);
          break;
        case 'secondary':
          engine?.setSecondary(raw.apex, raw.zone ? unpackZone(raw.zone) : null);
          break;
        case 'stop':
          closeConns?.();
          for (const c of closers) c();
          process.disconnect?.();
          setTimeout(() => process.exit(0), 50).unref();
          return;
      }
      send({ t: 'ack', op: raw.op });
    } catch (err) {
      log.error({ err: (err as Error).message, op: raw.t }, 'dns worker: message failed');
    }
  });
  process.on('disconnect', () => process.exit(0));
  send({ t: 'hello' });
}

if (cluster.isWorker) run();
