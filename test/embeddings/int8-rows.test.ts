import { describe, expect, it } from 'vitest';
import { Int8Rows } from '../../embeddings/int8-rows.js';

function unit(seed: number, dim: number): Float32Array {
  const v = new Float32Array(dim);
  let x = seed;
  for (let i = 0; i < dim; i++) v[i] = ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const n = Math.hypot(...v);
  return v.map((a) => a / n);
}

describe('Int8Rows (int8 vectors with a scale per row)', () => {
  it('keeps dot products within 1% of float32, grows, and reuses freed rows', () => {
    const rows = new Int8Rows(64, 2);
    const vs = Array.from({ length: 5 }, (_, i) => unit(i + 1, 64));
    const ids = vs.map((v) => rows.add(v));
    expect(ids).toEqual([0, 1, 2, 3, 4]);
    const q = unit(99, 64);
    vs.forEach((v, i) => {
      const exact = v.reduce((a, x, j) => a + x * q[j]!, 0);
      expect(Math.abs(rows.dot(i, q) - exact)).toBeLessThan(0.01);
      const back = rows.get(i);
      expect(back.reduce((a, x, j) => a + x * v[j]!, 0)).toBeGreaterThan(0.999);
    });
    rows.free(1);
    expect(rows.add(vs[0]!)).toBe(1);
    expect(rows.add(vs[0]!)).toBe(5);
  });
});
