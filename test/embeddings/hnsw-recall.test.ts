import { describe, expect, it } from 'vitest';
import hnswlib from 'hnswlib-node';

// HNSW with the parameters SemanticIndex uses (M 16, efConstruction 200, ef 200) against exact
// search on the same random unit vectors.
describe('HNSW recall@10 vs exact search', () => {
  it('is >= 0.98 on 5,000 random 64-dim vectors', () => {
    const n = 5000;
    const dim = 64;
    let seed = 42;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
    const unit = () => {
      const v = Array.from({ length: dim }, rnd);
      const s = Math.hypot(...v);
      return v.map((x) => x / s);
    };
    const data = Array.from({ length: n }, unit);
    const h = new hnswlib.HierarchicalNSW('cosine', dim);
    h.initIndex({ maxElements: n, m: 16, efConstruction: 200, randomSeed: 100 });
    data.forEach((v, i) => h.addPoint(v, i));
    h.setEf(200);
    let found = 0;
    const queries = 100;
    for (let qi = 0; qi < queries; qi++) {
      const q = unit();
      const exact = data
        .map((v, i) => [i, v.reduce((s, x, j) => s + x * q[j]!, 0)] as const)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 10)
        .map((x) => x[0]);
      const got = new Set(h.searchKnn(q, 10).neighbors);
      found += exact.filter((i) => got.has(i)).length;
    }
    process.stderr.write(`hnsw recall@10 ${found / (queries * 10)}\n`);
    expect(found / (queries * 10)).toBeGreaterThanOrEqual(0.98);
  });
});
