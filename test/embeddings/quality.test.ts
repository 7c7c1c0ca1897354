import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResolveAnswer } from '../../ans/index.js';
import { client } from '../helpers/api.js';
import { opensslCsr } from '../helpers/pki.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';
import { devSetCards, loadDevSet, scoreQuality, type QualityFigures } from './devset.js';

// Through the API: `ans serve` with the default embedder (USE-lite) and ranking; the dev set's
// cards are registered with a CSR each and approved; the queries go to GET /v1/resolve?k=5.
describe('resolve quality on semantic-dev.json (ans serve, USE-lite, default ranking)', () => {
  let s: RunningServer;
  let api: ReturnType<typeof client>;
  let figures: QualityFigures;

  const resolve = (q: string) => api.get<ResolveAnswer>(`/v1/resolve?k=5&q=${encodeURIComponent(q)}`);
  /** Results as dev-set labels (FQDN = label + zone). */
  const labels = (a: ResolveAnswer) => a.results.map((r) => r.fqdn.split('.')[0]!);

  beforeAll(async () => {
    s = await startServer({ args: ['--embedder', 'use', '--resolve-rate', '10000'] });
    api = client(s.url);
    const cards = devSetCards();
    for (const c of cards) {
      const r = await api.post<{ id: string }>('/v1/agents', {
        card: c,
        csr: opensslCsr(`${c.label}.agents.internal`).csrPem,
      });
      expect(r.status).toBe(202);
      const a = await api.post(`/v1/agents/${r.body.id}/approve`, {}, s.adminToken);
      expect(a.status).toBe(200);
    }
    // The index applies changes in order: once the last card answers its own name, all are in.
    const last = cards.at(-1)!;
    await until(async () => (labels((await resolve(last.name)).body).includes(last.label) ? true : undefined), 240_000);
    const set = loadDevSet();
    const answers: string[][] = [];
    for (const q of set.queries) {
      const r = await resolve(q.q);
      expect(r.status).toBe(200);
      answers.push(labels(r.body));
    }
    figures = scoreQuality(set.queries, answers);
    process.stderr.write(`quality: ${JSON.stringify(figures)}\n`);
  }, 300_000);

  afterAll(async () => {
    await s?.stop();
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
  it('out-of-scope queries are answered with no result and a reason >= 60% (issue 5 target; measured 60%)', async () => {
    expect(figures.oosRejected).toBeGreaterThanOrEqual(0.6);
    const r = await resolve('Write a birthday poem for my grandma');
    expect(r.body.results).toEqual([]);
    expect(r.body.reason).toBeTruthy();
  });

  it('scores are calibrated into [0, 1], best first', async () => {
    const { results } = (await resolve('wifi is dead in the back bedroom')).body;
    expect(results.length).toBeGreaterThan(0);
    for (const h of results) {
      expect(h.score).toBeGreaterThanOrEqual(0);
      expect(h.score).toBeLessThanOrEqual(1);
    }
    const scores = results.map((h) => h.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
  });
});
