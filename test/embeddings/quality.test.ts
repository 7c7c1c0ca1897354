import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Db } from '../../src/store/index.js';
import { createEmbedder, SemanticIndex, type Embedder } from '../../embeddings/index.js';
import { devSetDocs, loadDevSet, scoreQuality, type QualityFigures } from './devset.js';

// Library level: the dev set indexed with the default embedder (USE-lite) and default ranking.
describe('resolve quality on semantic-dev.json (USE-lite, default ranking: card + description, word alignment)', () => {
  let embedder: Embedder;
  let db: Db;
  let idx: SemanticIndex;
  let figures: QualityFigures;

  beforeAll(async () => {
    embedder = await createEmbedder({ kind: 'use' });
    db = await openStore({});
    idx = await SemanticIndex.open({ embedder, db, dataDir: undefined });
    let seq = 0;
    for (const d of devSetDocs()) await idx.upsert(d, ++seq);
    const set = loadDevSet();
    const answers: string[][] = [];
    for (const q of set.queries) answers.push((await idx.search(q.q, { k: 5 })).hits.map((h) => h.id));
    figures = scoreQuality(set.queries, answers);
    process.stderr.write(`quality: ${JSON.stringify(figures)}\n`);
  }, 300_000);

  afterAll(async () => {
    await idx?.close();
    await db?.close();
    await embedder?.close?.();
  });

  it('recall@1 >= 0.55 (issue 5 target; measured 0.556)', () => {
    expect(figures.recallAt1).toBeGreaterThanOrEqual(0.55);
  });

  // Word alignment (late interaction over card words, CombMAX with the sentence score) re-ranks
  // the top 20; it finds one more relevant agent in the top 5 than the sentence score alone.
  // The vocabulary test (threshold 0.809, cross-validated in bench/resolve-quality) refuses the
  // non-English queries, which English-only USE-lite misses anyway, and no answerable English one.
  it('recall@5 >= 0.85 (issue 5 target; measured 0.867)', () => {
    expect(figures.recallAt5).toBeGreaterThanOrEqual(0.85);
  });

  // 3 of the 5 out-of-scope queries get no result (5-fold CV: 3 of 5 too).
  it('out-of-scope queries are answered with no result >= 60% (issue 5 target; measured 60%)', () => {
    expect(figures.oosRejected).toBeGreaterThanOrEqual(0.6);
  });

  it('scores are calibrated into [0, 1], best first', async () => {
    const { hits } = await idx.search('wifi is dead in the back bedroom', { k: 5 });
    expect(hits.length).toBeGreaterThan(0);
    for (const h of hits) {
      expect(h.score).toBeGreaterThanOrEqual(0);
      expect(h.score).toBeLessThanOrEqual(1);
    }
    const scores = hits.map((h) => h.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
  });
});
