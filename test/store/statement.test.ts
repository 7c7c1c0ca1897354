import { describe, expect, it } from 'vitest';
import { combine } from '../../src/store/index.js';

describe('combine', () => {
  it('returns the main statement alone when there is nothing to add', () => {
    const main = { text: 'SELECT $1', params: [1] };
    expect(combine([], main)).toBe(main);
  });

  it('puts writes first as CTEs and renumbers every placeholder after them', () => {
    const st = combine(
      [
        { text: 'INSERT INTO a (x, y) VALUES ($1, $2)', params: ['x', 'y'] },
        { text: 'UPDATE b SET z = $1 WHERE id = $2', params: ['z', 7] },
      ],
      { text: 'SELECT $1::int + $2::int AS n', params: [3, 4] },
    );
    expect(st.text).toBe(
      'WITH w0 AS (INSERT INTO a (x, y) VALUES ($1, $2)), w1 AS (UPDATE b SET z = $3 WHERE id = $4) SELECT $5::int + $6::int AS n',
    );
    expect(st.params).toEqual(['x', 'y', 'z', 7, 3, 4]);
  });

  it("joins the main statement's own WITH list instead of nesting it", () => {
    const st = combine([{ text: 'DELETE FROM a WHERE id = $1', params: [1] }], {
      text: '  WITH c AS (SELECT $1 AS v) SELECT v FROM c',
      params: [2],
    });
    expect(st.text).toBe('WITH w0 AS (DELETE FROM a WHERE id = $1), c AS (SELECT $2 AS v) SELECT v FROM c');
    expect(st.params).toEqual([1, 2]);
  });

  it('renumbers multi-digit placeholders as numbers, not digit by digit', () => {
    const many = Array.from({ length: 11 }, (_, i) => `$${i + 1}`).join(', ');
    const st = combine([{ text: `SELECT ${many}`, params: Array.from({ length: 11 }, (_, i) => i) }], {
      text: 'SELECT $1, $10',
      params: Array.from({ length: 10 }, (_, i) => i),
    });
    expect(st.text.endsWith('SELECT $12, $21')).toBe(true);
  });
});
