/**
 * bench/federation/secondary: how long a secondary takes to copy a peer's zone (AXFR of N agents,
 * about six records each, over loopback TCP, then one IXFR after a change), and its memory.
 * Both ends are DnsServers in this process; each figure is one JSON line, with the load average.
 *
 *   npx tsx bench/federation/secondary.ts [--agents 10000]
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { DnsServer, type DnsLogger } from '../../dns/index.js';
import { synthAgent } from '../../test/dns/helpers.js';
import { freePort } from '../../test/helpers/ports.js';

const { values } = parseArgs({ options: { agents: { type: 'string', default: '10000' } } });
const N = Number(values.agents);
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const emit = (bench: string, value: number, unit: string, extra: Record<string, unknown> = {}) =>
  process.stdout.write(
    `${JSON.stringify({ bench, value: Math.round(value * 100) / 100, unit, ...extra, load: load() })}\n`,
  );

const port = await freePort();
const primary = new DnsServer({
  zone: 'agents.internal.',
  host: '127.0.0.1',
  port: 0,
  publicUrl: 'http://127.0.0.1:8080',
  notify: [`127.0.0.1:${port}`],
});
primary.load(
  Array.from({ length: N }, (_, i) => synthAgent(i)),
  1,
);
const { udpPort } = await primary.start();
const waiters: { msg: string; resolve: (o: object) => void }[] = [];
const seen = (msg: string) => new Promise<object>((resolve) => waiters.push({ msg, resolve }));
const log: DnsLogger = {
  info(o, msg) {
    const i = waiters.findIndex((w) => w.msg === msg);
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(o);
  },
  warn() {},
  error() {},
};
const rss0 = process.memoryUsage().rss;
const secondary = new DnsServer({
  zone: 'other.internal.',
  host: '127.0.0.1',
  port,
  publicUrl: 'http://127.0.0.1:8081',
  secondaries: [{ zone: 'agents.internal', primary: `127.0.0.1:${udpPort}` }],
  log,
});
let t = performance.now();
const axfr = seen('dns: secondary AXFR');
await secondary.start();
const a = (await axfr) as { records: number };
emit('dns.secondary_axfr', performance.now() - t, 'ms', { agents: N, records: a.records });
emit('dns.secondary_rss_delta', (process.memoryUsage().rss - rss0) / 1048576, 'MB', { agents: N });
t = performance.now();
const ixfr = seen('dns: secondary IXFR');
primary.upsert(synthAgent(N), 2);
await ixfr;
emit('dns.secondary_notify_ixfr', performance.now() - t, 'ms', { note: 'one change: NOTIFY, IXFR, zone swapped in' });
await secondary.stop();
await primary.stop();
