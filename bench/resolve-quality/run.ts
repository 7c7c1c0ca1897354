/**
 * Resolve quality on shared/data/semantic-dev.json: R@1, R@5 and out-of-scope rejection for every
 * ranking method tried, one JSON line per figure. The confidence threshold of each method is
 * chosen by 5-fold cross-validation (picked on 4/5 of the queries, applied to the held-out 1/5),
 * so the rejection figures are not fitted to the queries they are measured on.
 *   npx tsx bench/resolve-quality/run.ts [--embedder use|hash|transformers] [--model-dir DIR]
 */
import { openStore } from '../../src/store/index.js';
import {
  createEmbedder,
  SemanticIndex,
  DEFAULT_RANKING,
  type Embedder,
  type RankingOptions,
} from '../../embeddings/index.js';
import { devSetDocs, loadDevSet, scoreQuality, type DevQuery } from '../../test/embeddings/devset.js';

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const kind = (arg('embedder') ?? 'use') as 'use' | 'hash' | 'transformers';
const modelDir = arg('model-dir');

/** Caches vectors by text so methods that embed the same texts don't pay twice. */
function cached(e: Embedder): Embedder {
  const memo = new Map<string, Float32Array>();
  return {
    id: e.id,
    dim: e.dim,
    async embed(texts) {
      const todo = [...new Set(texts.filter((t) => !memo.has(t)))];
      if (todo.length) (await e.embed(todo)).forEach((v, i) => memo.set(todo[i]!, v));
      return texts.map((t) => memo.get(t)!);
    },
  };
}

const MM = { pool: 'maxmean' } as const;
const METHODS: { name: string; r: Partial<RankingOptions> }[] = [
  { name: 'card-cosine (baseline)', r: { parts: 'card', lowercase: false, wLexical: 0 } },
  { name: 'card-cosine lowercase', r: { parts: 'card', lowercase: true, wLexical: 0 } },
  { name: 'card + bm25 z-fusion 0.5', r: { parts: 'card', lowercase: false, wLexical: 0.5 } },
  { name: 'card+description 0.25', r: { parts: 'card+description', pool: 'weighted', wParts: 0.25, wLexical: 0 } },
  { name: 'card+description 0.5', r: { parts: 'card+description', pool: 'weighted', wParts: 0.5, wLexical: 0 } },
  { name: 'card+description 1', r: { parts: 'card+description', pool: 'weighted', wParts: 1, wLexical: 0 } },
  {
    name: 'card+description 0.5 + bm25 0.25',
    r: { parts: 'card+description', pool: 'weighted', wParts: 0.5, wLexical: 0.25 },
  },
  { name: 'card+sentences max', r: { parts: 'card+sentences', ...MM, wMean: 0, wLexical: 0 } },
  { name: 'card+sentences max+mean', r: { parts: 'card+sentences', ...MM, wMean: 1, wLexical: 0 } },
  { name: 'card+sentences+skills max', r: { parts: 'card+sentences+skills', ...MM, wMean: 0, wLexical: 0 } },
  { name: 'card+sentences+skills max+mean', r: { parts: 'card+sentences+skills', ...MM, wMean: 1, wLexical: 0 } },
  {
    name: 'card+sentences+skills weighted 0.5',
    r: { parts: 'card+sentences+skills', pool: 'weighted', wParts: 0.5, wLexical: 0 },
  },
  {
    name: 'card+sentences+skills max+mean + bm25 0.25',
    r: { parts: 'card+sentences+skills', ...MM, wMean: 1, wLexical: 0.25 },
  },
];

function emit(method: string, bench: string, value: number, unit: string): void {
  process.stdout.write(JSON.stringify({ bench, method, value: Math.round(value * 1000) / 1000, unit }) + '\n');
}

/** Threshold on the top hit's z maximising R@1 + R@5 + OOS rejection on `train`. */
function pickThreshold(train: { q: DevQuery; ranked: { id: string; z: number }[] }[]): number {
  const cands = [...new Set(train.map((t) => t.ranked[0]?.z ?? 0))].sort((a, b) => a - b);
  let best = -Infinity;
  let bestJ = -Infinity;
  for (const c of [-Infinity, ...cands.map((z) => z + 1e-9)]) {
    const f = scoreQuality(
      train.map((t) => t.q),
      train.map((t) => ((t.ranked[0]?.z ?? -Infinity) >= c ? t.ranked.map((x) => x.id) : [])),
    );
    const j = f.recallAt1 + f.recallAt5 + f.oosRejected;
    if (j > bestJ) [bestJ, best] = [j, c];
  }
  return best;
}

const set = loadDevSet();
const docs = devSetDocs();
const base = await createEmbedder(kind === 'transformers' ? { kind, modelDir: modelDir ?? '' } : { kind });
const embedder = cached(base);
const summary: Record<string, unknown>[] = [];
for (const m of METHODS) {
  const db = await openStore({});
  const idx = await SemanticIndex.open({ embedder, db, dataDir: undefined, ranking: m.r });
  let seq = 0;
  for (const d of docs) await idx.upsert(d, ++seq);
  const rows: { q: DevQuery; ranked: { id: string; z: number }[] }[] = [];
  for (const q of set.queries) rows.push({ q, ranked: (await idx.rank(q.q, { k: 10 })).ranked });
  const open = scoreQuality(
    set.queries,
    rows.map((r) => r.ranked.map((x) => x.id)),
  );
  // 5-fold CV of the threshold, folds interleaved so each holds every kind.
  const answers: string[][] = [];
  const thresholds: number[] = [];
  for (let f = 0; f < 5; f++) {
    const th = pickThreshold(rows.filter((_, i) => i % 5 !== f));
    thresholds.push(th);
    rows.forEach((r, i) => {
      if (i % 5 === f) answers[i] = (r.ranked[0]?.z ?? -Infinity) >= th ? r.ranked.map((x) => x.id) : [];
    });
  }
  const cv = scoreQuality(set.queries, answers);
  const all = pickThreshold(rows);
  emit(m.name, 'resolve-quality.recall@1.no-threshold', open.recallAt1, 'ratio');
  emit(m.name, 'resolve-quality.recall@5.no-threshold', open.recallAt5, 'ratio');
  emit(m.name, 'resolve-quality.recall@1', cv.recallAt1, 'ratio');
  emit(m.name, 'resolve-quality.recall@5', cv.recallAt5, 'ratio');
  emit(m.name, 'resolve-quality.recall@5-fraction', cv.recallAt5Fraction, 'ratio');
  emit(m.name, 'resolve-quality.oos-rejected', cv.oosRejected, 'ratio');
  emit(m.name, 'resolve-quality.threshold-all-folds', Number.isFinite(all) ? all : -99, 'z');
  summary.push({
    method: m.name,
    r1: open.recallAt1,
    r5: open.recallAt5,
    cvR1: cv.recallAt1,
    cvR5: cv.recallAt5,
    oos: cv.oosRejected,
    th: all,
  });
  await idx.close();
  await db.close();
}
process.stderr.write(JSON.stringify({ embedder: base.id, defaults: DEFAULT_RANKING }) + '\n');
console.table(
  summary.map((s) =>
    Object.fromEntries(Object.entries(s).map(([k, v]) => [k, typeof v === 'number' ? Math.round(v * 1000) / 1000 : v])),
  ),
);
await base.close?.();
