/**
 * DNS benchmark: `npx tsx bench/dns/run.ts [--agents 10000,100000] [--seconds 10] [--workers N]`.
 * For each zone size: build the zone (time, memory), start our server (workers = cores) and Knot DNS
 * as a secondary of the same zone (AXFR from us), run dnsperf with a SRV/TXT/TLSA mix against each,
 * then a paced run at 90 % of the measured rate for latency percentiles. Prints one JSON line per
 * figure: {"bench", "value", "unit"}.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DnsServer } from '../../dns/index.js';
import { freePort } from '../../test/helpers/ports.js';
import { startKnot } from '../../test/dns/knot.js';
import { synthAgent } from '../../test/dns/helpers.js';

const run = promisify(execFile);
const args = process.argv.slice(2);
const arg = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const sizes = arg('agents', '10000,100000').split(',').map(Number);
const seconds = Number(arg('seconds', '10'));
const workers = Number(arg('workers', String(cpus().length)));

function out(bench: string, value: number, unit: string): void {
  process.stdout.write(JSON.stringify({ bench, value: Math.round(value * 100) / 100, unit }) + '\n');
}

function queryFile(n: number, dir: string): string {
  const lines: string[] = [];
  let x = 12345;
  for (let i = 0; i < 100_000; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const a = x % n;
    const k = i % 4;
    lines.push(
      k === 0
        ? `_a2a._tcp.agent${a}.agents.internal SRV`
        : k === 1
          ? `_ans.agent${a}.agents.internal TXT`
          : k === 2
            ? `_8443._tcp.agent${a}.agents.internal TLSA`
            : `agent${a}.agents.internal TXT`,
    );
  }
  const f = join(dir, `queries-${n}.txt`);
  writeFileSync(f, lines.join('\n') + '\n');
  return f;
}

/** dnsperf without verbose output: queries per second. */
async function qps(port: number, file: string): Promise<{ qps: number; lost: number }> {
  const { stdout } = await run(
    'dnsperf',
    ['-s', '127.0.0.1', '-p', String(port), '-d', file, '-l', String(seconds), '-c', '8', '-q', '200', '-T', '2'],
    {
      maxBuffer: 64 << 20,
    },
  );
  const q = /Queries per second:\s+([\d.]+)/.exec(stdout);
  const lost = /Queries lost:\s+(\d+)/.exec(stdout);
  return { qps: q ? Number(q[1]) : 0, lost: lost ? Number(lost[1]) : 0 };
}

/** Paced dnsperf with per-query output: latency percentiles (ms). */
function latency(port: number, file: string, rate: number): Promise<{ p50: number; p99: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn('dnsperf', [
      '-s',
      '127.0.0.1',
      '-p',
      String(port),
      '-d',
      file,
      '-l',
      String(Math.max(3, Math.floor(seconds / 2))),
      '-Q',
      String(Math.floor(rate)),
      '-c',
      '8',
      '-T',
      '2',
      '-v',
    ]);
    const lat: number[] = [];
    let rest = '';
    p.stdout.on('data', (c: Buffer) => {
      const text = rest + c.toString();
      const lines = text.split('\n');
      rest = lines.pop() ?? '';
      for (const l of lines) {
        if (!l.startsWith('>')) continue;
        const v = Number(l.slice(l.lastIndexOf(' ') + 1));
        if (Number.isFinite(v)) lat.push(v * 1000);
      }
    });
    p.on('error', reject);
    p.on('exit', () => {
      lat.sort((a, b) => a - b);
      const pct = (q: number): number =>
        lat.length ? lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]! : NaN;
      resolve({ p50: pct(0.5), p99: pct(0.99) });
    });
  });
}

async function waitSerial(port: number, serial: number, ms = 120_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      const { stdout } = await run('kdig', [
        '@127.0.0.1',
        '-p',
        String(port),
        '+short',
        '+time=1',
        '+retry=0',
        'SOA',
        'agents.internal',
      ]);
      if (stdout.split(' ')[2] === String(serial)) return true;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

async function main(): Promise<void> {
  for (const tool of ['dnsperf', 'kdig']) {
    if (!['/usr/bin/', '/usr/sbin/'].some((d) => existsSync(d + tool))) {
      console.error(`bench/dns: ${tool} is not installed`);
      process.exit(1);
    }
  }
  const haveKnot = existsSync('/usr/sbin/knotd');
  if (!haveKnot) console.error('bench/dns: knotd missing, no Knot comparison');
  const dir = mkdtempSync(join(tmpdir(), 'ans-bench-dns-'));
  for (const n of sizes) {
    const agents = Array.from({ length: n }, (_, i) => synthAgent(i));
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    const server = new DnsServer({
      zone: 'agents.internal.',
      host: '127.0.0.1',
      port: 0,
      publicUrl: 'http://127.0.0.1:8080',
      workers,
    });
    const t0 = performance.now();
    server.load(agents, 1000);
    const buildMs = performance.now() - t0;
    global.gc?.();
    const rss1 = process.memoryUsage().rss;
    out(`dns.zone_build.${n}.time`, buildMs, 'ms');
    out(`dns.zone_build.${n}.rss_delta`, (rss1 - rss0) / 1e6, 'MB');
    out(`dns.zone_build.${n}.rss`, rss1 / 1e6, 'MB');
    const { udpPort: port } = await server.start();

    // AXFR time (kdig, whole zone over TCP)
    const ta = performance.now();
    const { stdout: axfr } = await run(
      'kdig',
      ['@127.0.0.1', '-p', String(port), 'AXFR', 'agents.internal', '+noall', '+stats'],
      { maxBuffer: 512 << 20 },
    ).catch(() => ({ stdout: '' }));
    out(`dns.axfr.${n}.time`, performance.now() - ta, 'ms');
    const rec = /Received [\d.]+ \w+ \((\d+) messages, (\d+) records\)/.exec(axfr);
    if (rec) out(`dns.axfr.${n}.records`, Number(rec[2]), 'records');

    const file = queryFile(n, dir);
    const ours = await qps(port, file);
    out(`dns.qps.${n}.ans`, ours.qps, 'qps');
    out(`dns.lost.${n}.ans`, ours.lost, 'queries');
    const ol = await latency(port, file, ours.qps * 0.9);
    out(`dns.latency.${n}.ans.p50`, ol.p50, 'ms');
    out(`dns.latency.${n}.ans.p99`, ol.p99, 'ms');

    if (haveKnot) {
      const knotPort = await freePort();
      const knot = startKnot({ port: knotPort, primaryPort: port, zone: 'agents.internal' });
      const tk = performance.now();
      const up = await waitSerial(knotPort, server.serial);
      out(`dns.knot_secondary_axfr.${n}.time`, performance.now() - tk, 'ms');
      if (up) {
        const k = await qps(knotPort, file);
        out(`dns.qps.${n}.knot`, k.qps, 'qps');
        out(`dns.lost.${n}.knot`, k.lost, 'queries');
        const kl = await latency(knotPort, file, k.qps * 0.9);
        out(`dns.latency.${n}.knot.p50`, kl.p50, 'ms');
        out(`dns.latency.${n}.knot.p99`, kl.p99, 'ms');
        out(`dns.qps.${n}.ratio_ans_to_knot`, k.qps ? ours.qps / k.qps : 0, 'x');
        // the same latency load for both: Knot at our 90 % rate
        const same = await latency(knotPort, file, ours.qps * 0.9);
        out(`dns.latency.${n}.knot_at_ans_rate.p99`, same.p99, 'ms');
      } else console.error(knot.log().slice(-2000));
      await knot.stop();
    }
    await server.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
