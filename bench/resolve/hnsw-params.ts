/**
 * HNSW parameters on real vectors: build time per point, recall@10 against exact search and
 * search time, for each M:efConstruction and each search ef, on the card and query vectors that
 * `bench/resolve/run.ts --save-vectors FILE` wrote (no embedding here, so a 100k study takes
 * minutes, not a bulk load). Points go in in agent order, single-threaded, as the index adds them.
 *   npx tsx bench/resolve/hnsw-params.ts FILE [--configs 16:100,16:200] [--ef 200,400]
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import hnswlib from 'hnswlib-node';

const args = process.argv.slice(2);
const arg = (n: string, d: string) => {
  const i = args.indexOf(`--${n}`);
  return i >= 0 ? args[i + 1]! : d;
};
const file = args[0];
if (!file || file.startsWith('--')) throw new Error('usage: hnsw-params.ts FILE [--configs M:EFC,...] [--ef EF,...]');
const dim = Number(arg('dim', '512'));
const configs = arg('configs', '16:100,16:200')
  .split(',')
  .map((c) => c.split(':').map(Number) as [number, number]);
const efs = arg('ef', '200,400').split(',').map(Number);

const read = (path: string) => {
  const b = readFileSync(path);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};
const cards = read(file);
const queries = read(`${file}.queries`);
const n = cards.length / dim;
const rows = (all: Float32Array) =>
  Array.from({ length: all.length / dim }, (_, i) => all.subarray(i * dim, (i + 1) * dim));
const qv = rows(queries);
const cardRows = rows(cards);

const exact = qv.map((q) => {
  const sims = cardRows.map((v, i) => {
    let d = 0;
    for (let j = 0; j < dim; j++) d += v[j]! * q[j]!;
    return [i, d] as const;
  });
  sims.sort((a, b) => b[1] - a[1]);
  return new Set(sims.slice(0, 10).map(([i]) => i));
});

const load = () => loadavg().map((x) => Math.round(x * 100) / 100);
for (const [m, efConstruction] of configs) {
  const h = new hnswlib.HierarchicalNSW('cosine', dim);
  h.initIndex({ maxElements: n, m, efConstruction, randomSeed: 100, allowReplaceDeleted: true });
  const t0 = performance.now();
  cardRows.forEach((v, i) => h.addPoint(Array.from(v), i, false));
  const buildMs = (performance.now() - t0) / n;
  const tag = { m, efConstruction, vectors: n, queries: qv.length };
  process.stdout.write(
    JSON.stringify({ bench: 'hnsw.build-per-point', value: +buildMs.toFixed(3), unit: 'ms', ...tag, loadavg: load() }) +
      '\n',
  );
  for (const ef of efs) {
    h.setEf(ef);
    let found = 0;
    const t1 = performance.now();
    qv.forEach((q, i) => {
      found += h.searchKnn(Array.from(q), 10).neighbors.filter((l) => exact[i]!.has(l)).length;
    });
    const searchMs = (performance.now() - t1) / qv.length;
    const line = { ...tag, ef, loadavg: load() };
    process.stdout.write(
      JSON.stringify({ bench: 'hnsw.recall@10', value: found / (qv.length * 10), unit: 'ratio', ...line }) + '\n',
    );
    process.stdout.write(
      JSON.stringify({ bench: 'hnsw.search', value: +searchMs.toFixed(3), unit: 'ms', ...line }) + '\n',
    );
  }
}
