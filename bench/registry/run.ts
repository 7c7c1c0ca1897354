/**
 * bench/registry: register+approve pairs per second through HTTP, on PGlite and on PostgreSQL,
 * and the RSS of `ans serve` holding N agents. Prints one JSON line per figure.
 *
 *   npx tsx bench/registry/run.ts [--pairs 2000] [--agents 10000] [--concurrency 16] [--stores pglite,postgres]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { createKeyAndCsr } from '../../src/client/index.js';
import { Pool } from 'undici';
import { card } from '../../test/helpers/api.js';
import { freshSchemaUrl, pgAvailable } from '../../test/helpers/pg.js';
import { startServer, type RunningServer } from '../../test/helpers/server.js';

const { values } = parseArgs({
  options: {
    pairs: { type: 'string', default: '2000' },
    agents: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '16' },
    stores: { type: 'string', default: 'pglite,postgres' },
    /** Write a V8 CPU profile of the server to this directory (open it in Chrome DevTools). */
    profile: { type: 'string' },
  },
});
const PAIRS = Number(values.pairs);
const AGENTS = Number(values.agents);
const CONC = Number(values.concurrency);

function emit(bench: string, value: number, unit: string, extra: Record<string, unknown> = {}) {
  process.stdout.write(`${JSON.stringify({ bench, value: Math.round(value * 100) / 100, unit, ...extra })}\n`);
}

/** utime+stime of a process in ms (clock ticks are 10 ms on Linux). */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** CPU ms of every PostgreSQL server process (backends, WAL writer...), so the store's share shows. */
function postgresCpuMs(): number {
  let total = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'postgres') total += cpuMs(Number(d));
    } catch {
      // the process ended while we looked
    }
  }
  return total;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function csrs(prefix: string, n: number): Promise<{ label: string; csr: string }[]> {
  const out: { label: string; csr: string }[] = [];
  for (let i = 0; i < n; i++) {
    const label = `${prefix}${i}`;
    out.push({ label, csr: (await createKeyAndCsr(`${label}.agents.internal`)).csrPem });
  }
  return out;
}

/** Waits until the server used under 5% of a core for 2 s (at most 3 minutes); returns how long that took. */
async function settle(pid: number): Promise<number> {
  const t0 = performance.now();
  for (let last = cpuMs(pid); performance.now() - t0 < 180_000;) {
    await new Promise((r) => setTimeout(r, 2000));
    const now = cpuMs(pid);
    if (now - last < 100) break;
    last = now;
  }
  return Math.round(performance.now() - t0);
}

interface PairsResult {
  perSecond: number;
  /** CPU the server process spent per pair, and PostgreSQL's processes: load-independent figures. */
  serverCpuMsPerPair: number;
  postgresCpuMsPerPair: number;
}

async function pairs(s: RunningServer, items: { label: string; csr: string }[]): Promise<PairsResult> {
  // undici's Pool costs the client far less CPU than fetch, so the server is what gets measured.
  const pool = new Pool(s.url, { connections: CONC });
  const post = async (path: string, body: unknown, bearer?: string) => {
    const r = await pool.request({
      method: 'POST',
      path,
      headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
      body: JSON.stringify(body),
    });
    return { status: r.statusCode, body: (await r.body.json()) as { id?: string } };
  };
  let next = 0;
  let failed = 0;
  const cpu0 = cpuMs(s.proc.pid!);
  const pg0 = postgresCpuMs();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (next < items.length) {
        const it = items[next++]!;
        const r = await post('/v1/agents', { card: card(it.label), csr: it.csr });
        if (r.status !== 202) {
          failed++;
          continue;
        }
        const a = await post(`/v1/agents/${r.body.id}/approve`, {}, s.adminToken);
        if (a.status !== 200) failed++;
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const serverCpu = cpuMs(s.proc.pid!) - cpu0;
  const pgCpu = postgresCpuMs() - pg0;
  await pool.close();
  if (failed) process.stderr.write(`${failed} requests failed\n`);
  return {
    perSecond: items.length / secs,
    serverCpuMsPerPair: serverCpu / items.length,
    postgresCpuMsPerPair: pgCpu / items.length,
  };
}

async function run(store: string, env: NodeJS.ProcessEnv) {
  const nodeArgs = values.profile ? ['--cpu-prof', `--cpu-prof-dir=${values.profile}`] : [];
  const s = await startServer({ env, nodeArgs, args: ['--register-rate', '1000000'] });
  try {
    const warm = await csrs(`w${store}`, 50);
    await pairs(s, warm);
    const items = await csrs(`p${store}`, PAIRS);
    const r = await pairs(s, items);
    emit('registry.register_approve', r.perSecond, 'pairs/s', { store, concurrency: CONC, pairs: PAIRS });
    emit('registry.server_cpu_per_pair', r.serverCpuMsPerPair, 'ms', { store });
    if (store === 'postgres') emit('registry.postgres_cpu_per_pair', r.postgresCpuMsPerPair, 'ms', { store });
    if (AGENTS > PAIRS) await pairs(s, await csrs(`f${store}`, AGENTS - PAIRS - 50));
    emit('registry.rss', rssMb(s.proc.pid!), 'MB', { store, agents: AGENTS, embedder: 'hash', when: 'after load' });
    // The projections (vector index, federation records) catch up after a burst; RSS once idle.
    const settledMs = await settle(s.proc.pid!);
    emit('registry.rss', rssMb(s.proc.pid!), 'MB', {
      store,
      agents: AGENTS,
      embedder: 'hash',
      when: 'settled',
      settledMs,
    });
  } finally {
    await s.stop();
  }
}

const stores = (values.stores ?? '').split(',');
process.stderr.write(
  `load average at start: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}\n`,
);
if (stores.includes('pglite')) await run('pglite', {});
if (stores.includes('postgres')) {
  if (await pgAvailable()) await run('postgres', { DATABASE_URL: await freshSchemaUrl() });
  else process.stderr.write('PostgreSQL not available: skipped\n');
}
process.stderr.write(
  `load average at end: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}\n`,
);
