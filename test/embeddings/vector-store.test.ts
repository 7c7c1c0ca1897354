import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Db } from '../../src/store/index.js';
import { VectorStore } from '../../embeddings/vector-store.js';

const vec = (seed: number): Float32Array => Float32Array.from({ length: 8 }, (_, i) => Math.sin(seed * 7.1 + i) / 3);

describe('VectorStore (agent_vectors, grouped writes and lookups)', () => {
  let db: Db;
  beforeAll(async () => {
    db = await openStore({});
  });
  afterAll(async () => {
    await db.close();
  });

  it('stores concurrent upserts (one group), returns them by text hash, replaces and removes', async () => {
    const store = new VectorStore(db, 'test-embedder', 8);
    await Promise.all(
      Array.from({ length: 300 }, (_, i) => store.save(`a${i}`, `h${i}`, i + 1, [vec(i), vec(i + 1000)])),
    );
    const rows = await db.query<{ n: string }>(
      "SELECT count(*) AS n FROM agent_vectors WHERE embedder = 'test-embedder'",
    );
    expect(Number(rows[0]!.n)).toBe(600);
    const [got, stale, other] = await Promise.all([
      store.stored('a7', 'h7', 2),
      store.stored('a7', 'changed text', 2),
      new VectorStore(db, 'another-embedder', 8).stored('a7', 'h7', 2),
    ]);
    expect(stale).toBeUndefined();
    expect(other).toBeUndefined();
    const want = [vec(7), vec(1007)];
    got!.forEach((v, p) => v.forEach((x, i) => expect(Math.abs(x - want[p]![i]!)).toBeLessThan(1e-7)));
    await store.save('a7', 'h7b', 301, [vec(1)]);
    expect(await store.stored('a7', 'h7b', 1)).toHaveLength(1);
    expect(await store.stored('a7', 'h7', 2)).toBeUndefined();
    await store.remove('a7');
    expect(await store.stored('a7', 'h7b', 1)).toBeUndefined();
  });
});
