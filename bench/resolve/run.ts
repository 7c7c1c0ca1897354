/**
 * Resolve speed at scale (library level): synthetic agents made from templates, bulk-load
 * throughput, search latency p50/p99 under 4 concurrent callers, RSS, HNSW recall@10 vs exact.
 *   npx tsx bench/resolve/run.ts [--agents 1000,10000] [--embedder hash|use] [--throughput-sample 200]
 * Latency at scale uses the embedder given (default hash: embedding 100k cards with USE-lite is
 * 13+ core-minutes); the USE-lite indexing throughput is measured on a sample with both cores and
 * the 100k bulk-load time is extrapolated from it. One JSON line per figure.
 */
import hnswlib from 'hnswlib-node';
import { openStore } from '../../src/store/index.js';
import { createEmbedder, SemanticIndex, type AgentDoc, type Embedder } from '../../embeddings/index.js';
import { parseVector } from '../../embeddings/semantic-index.js';

const args = process.argv.slice(2);
const arg = (n: string, d: string) => {
  const i = args.indexOf(`--${n}`);
  return i >= 0 ? args[i + 1]! : d;
};
const sizes = arg('agents', '1000,10000').split(',').map(Number);
const kind = arg('embedder', 'hash') as 'hash' | 'use';
const sample = Number(arg('throughput-sample', '200'));
/** USE-lite backend: onnx (onnxruntime-node, default) or tfjs (wasm). */
const useBackend = arg('use-backend', 'onnx') as 'onnx' | 'tfjs';
/** Skip part 1 (USE-lite sample) when only the scale figures are wanted. */
const skipSample = args.includes('--no-sample');

function emit(bench: string, value: number, unit: string, extra: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ bench, value: Math.round(value * 100) / 100, unit, ...extra }) + '\n');
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
async function latency(idx: SemanticIndex, n: number): Promise<number[]> {
  return timed(n, (q) => idx.search(q, { k: 5 }));
}
async function timed(n: number, fn: (q: string) => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  let next = 0;
  const deadline = Date.now() + 15_000;
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

// 1. Indexing throughput with USE-lite on both cores (a sample), extrapolated to 100k.
if (!skipSample) {
  const use = await createEmbedder({ kind: 'use', threads: 2, backend: useBackend });
  const db = await openStore({});
  // coverageMinWords 0: the vocabulary test runs whatever the synthetic vocabulary's size.
  const idx = await SemanticIndex.open({ embedder: use, db, dataDir: undefined, ranking: { coverageMinWords: 0 } });
  await use.embed(['warm up']);
  const docs = Array.from({ length: sample }, (_, i) => synth(1_000_000 + i));
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  await Promise.all(docs.map((d, i) => idx.upsert(d, i + 1)));
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  // CPU seconds (all threads of this process) per agent: independent of other jobs' load; two
  // idle cores would index 2 / cpuPerAgent agents/s.
  const cpuPerAgent = (cpu.user + cpu.system) / 1e6 / sample;
  emit('resolve.index-throughput.use-lite', sample / s, 'agents/s', { agents: sample, threads: 2, useBackend });
  emit('resolve.index-cpu-per-agent.use-lite', cpuPerAgent * 1000, 'ms', { useBackend });
  emit('resolve.bulk-load-100k.use-lite.cpu-bound-2-cores', (100_000 * cpuPerAgent) / 2 / 60, 'min', { useBackend });
  emit('resolve.bulk-load-100k.use-lite.extrapolated', 100_000 / (sample / s) / 60, 'min');
  const lat = await latency(idx, 200);
  emit('resolve.search-p50.use-lite', pct(lat, 50), 'ms', { agents: sample, concurrency: 4, vocabularyTest: true });
  emit('resolve.search-p99.use-lite', pct(lat, 99), 'ms', { agents: sample, concurrency: 4, vocabularyTest: true });
  // The same agents without the out-of-scope vocabulary test (vectors reused from the store).
  const plain = await SemanticIndex.open({ embedder: use, db, dataDir: undefined, ranking: { coverage: -Infinity } });
  for (const [i, d] of docs.entries()) await plain.upsert(d, i + 1);
  const latPlain = await latency(plain, 200);
  emit('resolve.search-p50.use-lite', pct(latPlain, 50), 'ms', {
    agents: sample,
    concurrency: 4,
    vocabularyTest: false,
  });
  emit('resolve.search-p99.use-lite', pct(latPlain, 99), 'ms', {
    agents: sample,
    concurrency: 4,
    vocabularyTest: false,
  });
  await plain.close();
  // Where the time goes: the query embedding alone under the same load.
  const ce = process.cpuUsage();
  const emb = await timed(200, (q) => use.embed([q.toLowerCase()]));
  const cpuE = process.cpuUsage(ce);
  emit('resolve.query-embed-cpu.use-lite', (cpuE.user + cpuE.system) / 1000 / emb.length, 'ms', { useBackend });
  emit('resolve.query-embed-p50.use-lite', pct(emb, 50), 'ms', { concurrency: 4 });
  emit('resolve.query-embed-p99.use-lite', pct(emb, 99), 'ms', { concurrency: 4 });
  await idx.close();
  await db.close();
  await use.close?.();
}

// 2. Scale with the chosen embedder.
const embedder: Embedder = await createEmbedder(kind === 'use' ? { kind, backend: useBackend } : { kind });
for (const n of sizes) {
  const db = await openStore({});
  const idx = await SemanticIndex.open({
    embedder,
    db,
    dataDir: undefined,
    initialCapacity: n + 1024,
    ranking: { threshold: -Infinity },
  });
  const t0 = performance.now();
  const batch = 64;
  for (let i = 0; i < n; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, j) => idx.upsert(synth(i + j), i + j + 1)));
  }
  const s = (performance.now() - t0) / 1000;
  emit(`resolve.index-throughput.${kind}`, n / s, 'agents/s', { agents: n, note: 'includes PGlite writes' });
  emit(`resolve.bulk-load.${kind}`, s / 60, 'min', { agents: n });
  const lat = await latency(idx, 2000);
  emit(`resolve.search-p50.${kind}`, pct(lat, 50), 'ms', { agents: n, concurrency: 4 });
  emit(`resolve.search-p99.${kind}`, pct(lat, 99), 'ms', { agents: n, concurrency: 4 });
  emit('resolve.rss', process.memoryUsage().rss / 2 ** 20, 'MiB', { agents: n });

  // HNSW recall@10 vs exact search over the same stored vectors.
  const rows = await db.query<{ embedding: string }>(
    'SELECT embedding::text AS embedding FROM agent_vectors WHERE part = 0',
  );
  const vecs = rows.map((r) => parseVector(r.embedding));
  const h = new hnswlib.HierarchicalNSW('cosine', embedder.dim);
  h.initIndex({ maxElements: vecs.length, m: 16, efConstruction: 200, randomSeed: 100 });
  vecs.forEach((v, i) => h.addPoint(Array.from(v), i));
  h.setEf(200);
  const qv = await embedder.embed(QUERIES.slice(0, 50));
  let found = 0;
  for (const q of qv) {
    const sims = vecs.map((v, i) => [i, v.reduce((a, x, j) => a + x * q[j]!, 0)] as const);
    sims.sort((a, b) => b[1] - a[1]);
    const got = new Set(h.searchKnn(Array.from(q), 10).neighbors);
    found += sims.slice(0, 10).filter(([i]) => got.has(i)).length;
  }
  emit('resolve.hnsw-recall@10', found / (qv.length * 10), 'ratio', { agents: n, vectors: vecs.length });
  await idx.close();
  await db.close();
}
