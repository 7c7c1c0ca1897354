/**
 * Resolve speed at scale: synthetic agents made from templates (varied wording), bulk-load
 * throughput with the default USE-lite embedder on both cores (wall clock and CPU per agent,
 * PGlite on disk as `ans serve` runs it), search latency p50/p99 under 4 concurrent callers both
 * in-process and through `GET /v1/resolve` over HTTP (Fastify, the real route, signed answers;
 * the clients in a process of their own, client.mjs),
 * RSS, and recall@10 of the index's own HNSW graph against exact search over the stored vectors.
 * Every figure carries the load average it was measured under (the machine is shared).
 *   npx tsx bench/resolve/run.ts [--agents 1000,10000] [--embedder use|hash] [--window 256]
 *     [--store disk|memory] [--m 32] [--ef-construction 200] [--ef 200] [--save-vectors FILE]
 * --save-vectors writes the last size's card vectors and the recall queries' vectors (FILE and
 * FILE.queries, float32) for bench/resolve/hnsw-params.ts, which compares HNSW parameters on
 * them without re-embedding.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { openStore } from '../../src/store/index.js';
import { createEmbedder, screenText, SemanticIndex, type AgentDoc } from '../../embeddings/index.js';
import { parseVector } from '../../embeddings/vector-store.js';
import { ActiveDirectory, Resolver, resolveRoutes, type AgentRow } from '../../ans/index.js';
import { ResponseSigner } from '../../ca/index.js';

const args = process.argv.slice(2);
const arg = (n: string, d: string) => {
  const i = args.indexOf(`--${n}`);
  return i >= 0 ? args[i + 1]! : d;
};
const sizes = arg('agents', '1000,10000').split(',').map(Number);
const kind = arg('embedder', 'use') as 'hash' | 'use';
/** Upserts in flight during the bulk load (a bulk loader keeps the embedder queue full). */
const window = Number(arg('window', '256'));
const store = arg('store', 'disk') as 'disk' | 'memory';
const saveVectors = arg('save-vectors', '');
/** HNSW parameters (the index's defaults: M 32, efConstruction 200, ef 200). */
const hnsw = {
  m: Number(arg('m', '32')),
  efConstruction: Number(arg('ef-construction', '200')),
  efSearch: Number(arg('ef', '200')),
};

const execFileP = promisify(execFile);
const CLIENT = new URL('./client.mjs', import.meta.url).pathname;

const load = () => loadavg().map((x) => Math.round(x * 100) / 100);
function emit(bench: string, value: number, unit: string, extra: Record<string, unknown> = {}): void {
  const line = { bench, value: Math.round(value * 100) / 100, unit, ...extra, loadavg: load() };
  process.stdout.write(JSON.stringify(line) + '\n');
}

let seed = 1;
const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
const VERBS = [
  'Diagnoses',
  'Books',
  'Tracks',
  'Schedules',
  'Summarises',
  'Monitors',
  'Optimises',
  'Translates',
  'Reconciles',
  'Plans',
];
const OBJECTS = [
  'home broadband faults',
  'flights and hotels',
  'parcel deliveries',
  'team meetings',
  'legal contracts',
  'energy usage',
  'mobile coverage',
  'support tickets',
  'supplier invoices',
  'weekend trips',
  'medication doses',
  'car maintenance',
];
const MANNER = [
  'in real time',
  'from a plain-language request',
  'across several providers',
  'with a daily report',
  'for small businesses',
  'for households',
  'on a schedule',
  'with human approval',
];
const DOMAINS = ['agents.internal', 'travel.example', 'telco.example'];

function synth(i: number): AgentDoc {
  const v = pick(VERBS);
  const o = pick(OBJECTS);
  const m = pick(MANNER);
  return {
    id: `a${i}`,
    fqdn: `a${i}.agents.internal`,
    name: `${o.split(' ')[0]} ${v.toLowerCase()} agent ${i}`,
    description: `${v} ${o} ${m}. Variant ${i % 97} handles region ${i % 13} and tier ${i % 5}.`,
    skills: [
      { id: 's1', name: `${v} ${o}`, description: `${v} ${o} ${pick(MANNER)}.`, tags: [o.split(' ')[0]!] },
      { id: 's2', name: `Report on ${o}`, description: `Explains ${o} ${pick(MANNER)}.` },
    ],
    protocols: [pick(['a2a', 'mcp', 'http'])],
    domain: pick(DOMAINS),
  };
}

const QUERIES = Array.from(
  { length: 2000 },
  (_, i) => `${pick(VERBS).toLowerCase()} my ${pick(OBJECTS)} ${pick(MANNER)} ${i}`,
);

/** p50/p99 of `fn` under 4 concurrent callers (distinct queries: nothing is cached). */
async function timed(n: number, fn: (q: string) => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  let next = 0;
  const deadline = Date.now() + 20_000;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < n && Date.now() < deadline) {
        const q = QUERIES[next++ % QUERIES.length]!;
        const t = performance.now();
        await fn(q);
        times.push(performance.now() - t);
      }
    }),
  );
  return times.sort((a, b) => a - b);
}
const pct = (s: number[], p: number) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;

/** The registry row the resolve route reads for a synthetic agent (active, never heartbeated). */
function rowOf(d: AgentDoc): AgentRow {
  const at = new Date(0);
  return {
    id: d.id,
    label: d.id,
    zone: d.domain,
    fqdn: d.fqdn,
    status: 'active',
    version: '1.0.0',
    card: {
      label: d.id,
      name: d.name,
      description: d.description,
      version: '1.0.0',
      skills: d.skills,
      endpoints: d.protocols.map((p) => ({ protocol: p as 'a2a', url: `https://${d.id}.example:8443/${p}` })),
    },
    csr: '',
    createdAt: at,
    updatedAt: at,
    lastHeartbeat: null,
    certSerial: null,
    spkiSha256: null,
  };
}

const embedder = await createEmbedder({ kind });
await embedder.embed(['warm up']);
emit('resolve.rss-before-load', process.memoryUsage().rss / 2 ** 20, 'MiB', { embedder: embedder.id });
for (const n of sizes) {
  const dir = mkdtempSync(join(tmpdir(), 'ans-bench-resolve-'));
  const db = await openStore({ dataDir: store === 'disk' ? dir : undefined });
  const idx = await SemanticIndex.open({ embedder, db, dataDir: undefined, initialCapacity: n + 1024, ...hnsw });
  const tag = { agents: n, embedder: kind, store, window, ...hnsw };

  // Bulk load: `window` upserts in flight, each resolving once its vectors are stored.
  const la0 = load();
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: Math.min(window, n) }, async () => {
      while (next < n) {
        const i = next++;
        await idx.upsert(synth(i), i + 1);
        if (++done % 10_000 === 0)
          process.stderr.write(`  ${done}/${n} agents, ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
      }
    }),
  );
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  const elu = performance.eventLoopUtilization(elu0);
  emit(`resolve.bulk-load`, s / 60, 'min', { ...tag, loadavgBefore: la0 });
  emit(`resolve.index-throughput`, n / s, 'agents/s', tag);
  // CPU of every thread (main + embedder workers) per agent: less sensitive to other jobs than wall time.
  emit(`resolve.index-cpu-per-agent`, (cpu.user + cpu.system) / 1000 / n, 'ms', tag);
  // The main thread (index, HNSW inserts, PGlite) on its own: it cannot use the second core.
  emit(`resolve.index-main-thread-per-agent`, elu.active / n, 'ms', tag);
  emit(
    `resolve.bulk-load-100k.cpu-bound-2-cores`,
    (((cpu.user + cpu.system) / 1e6 / n) * 100_000) / 2 / 60,
    'min',
    tag,
  );

  // In-process search (embedding, HNSW, re-rank, calibration).
  await timed(40, (q) => idx.search(q, { k: 5 }));
  const lat = await timed(2000, (q) => idx.search(q, { k: 5 }));
  emit('resolve.search-p50', pct(lat, 50), 'ms', { ...tag, concurrency: 4, queries: lat.length });
  emit('resolve.search-p99', pct(lat, 99), 'ms', { ...tag, concurrency: 4, queries: lat.length });

  // GET /v1/resolve over HTTP: the real route and Resolver, signed (ES256) answers.
  const directory = new ActiveDirectory(30_000);
  for (let i = 0; i < n; i++) directory.apply(rowOf(synth(i)), `a${i}`);
  const issuer = 'http://127.0.0.1';
  const signer = await ResponseSigner.open({ db, passphrase: undefined, issuer });
  const resolver = new Resolver({
    search: idx,
    directory,
    signer,
    screen: (t) => screenText(t, { maxLength: 1000 }),
    issuer,
  });
  const app = Fastify();
  await app.register(resolveRoutes, { resolver, signer, perMinute: 1e9 });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  // The 4 clients run in a process of their own (client.mjs), as real callers do.
  const queriesFile = join(dir, 'queries.json');
  writeFileSync(queriesFile, JSON.stringify(QUERIES));
  const clients = async (count: number): Promise<number[]> => {
    const { stdout } = await execFileP(process.execPath, [CLIENT, url, queriesFile, String(count), '4']);
    const { times, failed } = JSON.parse(stdout) as { times: number[]; failed: number };
    if (failed > 0) throw new Error(`${failed} resolve answers were not 200 with a jws`);
    return times.sort((a, b) => a - b);
  };
  await clients(40);
  const http = await clients(2000);
  emit('resolve.http-p50', pct(http, 50), 'ms', {
    ...tag,
    concurrency: 4,
    queries: http.length,
    client: 'own process',
  });
  emit('resolve.http-p99', pct(http, 99), 'ms', {
    ...tag,
    concurrency: 4,
    queries: http.length,
    client: 'own process',
  });
  await app.close();
  const mem = process.memoryUsage();
  const mib = (b: number) => Math.round(b / 2 ** 20);
  emit('resolve.rss', mem.rss / 2 ** 20, 'MiB', {
    ...tag,
    heapUsedMiB: mib(mem.heapUsed),
    externalMiB: mib(mem.external),
    arrayBuffersMiB: mib(mem.arrayBuffers),
  });

  // Recall@10 of the index's HNSW graph against exact search over the stored card vectors.
  const rows = await db.query<{ agent_id: string; embedding: string }>(
    'SELECT agent_id, embedding::text AS embedding FROM agent_vectors WHERE part = 0',
  );
  const vecs = rows.map((r) => parseVector(r.embedding));
  const qv = await embedder.embed(QUERIES.slice(0, 50).map((q) => q.toLowerCase()));
  if (saveVectors) {
    const flat = (vs: Float32Array[]) => {
      const all = new Float32Array(vs.length * embedder.dim);
      vs.forEach((v, i) => all.set(v, i * embedder.dim));
      return new Uint8Array(all.buffer);
    };
    writeFileSync(saveVectors, flat(vecs));
    writeFileSync(`${saveVectors}.queries`, flat(qv));
  }
  let found = 0;
  for (const q of qv) {
    const sims = vecs.map((v, i) => {
      let d = 0;
      for (let j = 0; j < v.length; j++) d += v[j]! * q[j]!;
      return [i, d] as const;
    });
    sims.sort((a, b) => b[1] - a[1]);
    const got = new Set(idx.nearestCards(q, 10));
    found += sims.slice(0, 10).filter(([i]) => got.has(rows[i]!.agent_id)).length;
  }
  emit('resolve.hnsw-recall@10', found / (qv.length * 10), 'ratio', { ...tag, vectors: vecs.length });
  await idx.close();
  await db.close();
  rmSync(dir, { recursive: true, force: true });
}
await embedder.close?.();
