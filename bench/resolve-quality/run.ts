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
/** Only the methods whose name contains this (e.g. --methods 'card+description 0.5'). */
const only = arg('methods');
/** How thresholds are picked on the training folds (see pickThresholds). */
const objective = (arg('objective') ?? 'target') as 'sum' | 'target';

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
  // Word alignment (late interaction over card words, vocabulary.ts) re-ranking the top 20.
  { name: 'card+description 0.5 + align max 0.3', r: { wAlign: 0.3, alignFusion: 'max' } },
  { name: 'card+description 0.5 + align max 0.5', r: { wAlign: 0.5, alignFusion: 'max' } },
  { name: 'card+description 0.5 + align max 0.6', r: { wAlign: 0.6, alignFusion: 'max' } },
  { name: 'card+description 0.5 + align max 0.8', r: { wAlign: 0.8, alignFusion: 'max' } },
  { name: 'card+description 0.5 + align sum 0.2', r: { wAlign: 0.2, alignFusion: 'sum' } },
  { name: 'card+description 0.5 + align sum 0.4', r: { wAlign: 0.4, alignFusion: 'sum' } },
  { name: 'card + align max 0.5', r: { parts: 'card', wAlign: 0.5, alignFusion: 'max' } },
  { name: 'card+description 1 + align max 0.5', r: { wParts: 1, wAlign: 0.5, alignFusion: 'max' } },
  {
    name: 'card+sentences+skills max+mean + bm25 0.25',
    r: { parts: 'card+sentences+skills', ...MM, wMean: 1, wLexical: 0.25 },
  },
];

function emit(method: string, bench: string, value: number, unit: string): void {
  process.stdout.write(
    JSON.stringify({ bench, method, objective, value: Math.round(value * 1000) / 1000, unit }) + '\n',
  );
}

type Row = { q: DevQuery; ranked: { id: string; z: number }[]; coverage: number };
/**
 * Out-of-scope rules: a query is answered when its top z and/or vocabulary coverage clear
 * thresholds. 'z+coverage': both must; 'z|coverage': either may (refused only when both are low).
 */
type Rule = 'z' | 'coverage' | 'z+coverage' | 'z|coverage';
const RULES: Rule[] = ['z', 'coverage', 'z+coverage', 'z|coverage'];
const topZ = (r: Row) => r.ranked[0]?.z ?? -Infinity;
const answered = (r: Row, rule: Rule, th: [number, number]) =>
  rule === 'z|coverage'
    ? topZ(r) >= th[0] || r.coverage >= th[1]
    : (rule === 'coverage' || topZ(r) >= th[0]) && (rule === 'z' || r.coverage >= th[1]);

/** Candidate thresholds: -inf and the midpoints between consecutive distinct values (max margin). */
function midpoints(values: number[]): number[] {
  const v = [...new Set(values.filter(Number.isFinite))].sort((a, b) => a - b);
  return [-Infinity, ...v.slice(1).map((x, i) => (x + v[i]!) / 2), v.length ? v[v.length - 1]! + 1e-6 : Infinity];
}

/**
 * Thresholds picked on `train`. Objective 'sum': maximise R@1 + R@5 + OOS rejection (one
 * out-of-scope query weighs as much as nine answerable ones here). 'target': the targets
 * as constraints: refuse >= 60% of the out-of-scope queries, then maximise R@1 + R@5 (the
 * cheapest refusal that meets the target); ties go to the lowest thresholds (fewest refusals).
 */
function pickThresholds(train: Row[], rule: Rule): [number, number] {
  const cz = rule === 'coverage' ? [-Infinity] : midpoints(train.map(topZ));
  const cc = rule === 'z' ? [-Infinity] : midpoints(train.map((t) => t.coverage));
  let best: [number, number] = [-Infinity, -Infinity];
  let bestJ = -Infinity;
  for (const z of cz)
    for (const c of cc) {
      const f = scoreQuality(
        train.map((t) => t.q),
        train.map((t) => (answered(t, rule, [z, c]) ? t.ranked.map((x) => x.id) : [])),
      );
      const j =
        objective === 'sum'
          ? f.recallAt1 + f.recallAt5 + f.oosRejected
          : (f.oosRejected >= 0.6 - 1e-9 ? 10 : f.oosRejected) + f.recallAt1 + f.recallAt5;
      if (j > bestJ + 1e-12) [bestJ, best] = [j, [z, c]];
    }
  return best;
}

const set = loadDevSet();
const docs = devSetDocs();
const base = await createEmbedder(kind === 'transformers' ? { kind, modelDir: modelDir ?? '' } : { kind });
const embedder = cached(base);
const summary: Record<string, unknown>[] = [];
for (const m of METHODS.filter((x) => !only || x.name.includes(only))) {
  const db = await openStore({});
  // coverage 0 / coverageMinWords 0: the vocabulary coverage is computed for every query and any
  // embedder, and refuses nothing by itself (the rules below apply thresholds to it).
  const idx = await SemanticIndex.open({
    embedder,
    db,
    dataDir: undefined,
    // wAlign 0 unless the method asks for word alignment (the default has it on).
    ranking: { coverage: 0, wAlign: 0, ...m.r, coverageMinWords: 0 },
  });
  let seq = 0;
  for (const d of docs) await idx.upsert(d, ++seq);
  const rows: Row[] = [];
  for (const q of set.queries) {
    const r = await idx.rank(q.q, { k: 10 });
    rows.push({ q, ranked: r.ranked, coverage: r.coverage ?? 1 });
  }
  const open = scoreQuality(
    set.queries,
    rows.map((r) => r.ranked.map((x) => x.id)),
  );
  emit(m.name, 'resolve-quality.recall@1.no-threshold', open.recallAt1, 'ratio');
  emit(m.name, 'resolve-quality.recall@5.no-threshold', open.recallAt5, 'ratio');
  const row: Record<string, unknown> = { method: m.name, r1: open.recallAt1, r5: open.recallAt5 };
  if (only) {
    const cov = rows.map((r) => `${r.coverage.toFixed(3)} ${r.q.kind} ${r.q.q.slice(0, 50)}`).sort();
    process.stderr.write(cov.slice(0, 12).join('\n') + '\n');
  }
  // 5-fold CV of each out-of-scope rule, folds interleaved so each holds every kind.
  for (const rule of RULES) {
    const answers: string[][] = [];
    for (let f = 0; f < 5; f++) {
      const th = pickThresholds(
        rows.filter((_, i) => i % 5 !== f),
        rule,
      );
      rows.forEach((r, i) => {
        if (i % 5 === f) answers[i] = answered(r, rule, th) ? r.ranked.map((x) => x.id) : [];
      });
    }
    const cv = scoreQuality(set.queries, answers);
    const all = pickThresholds(rows, rule);
    const tag = rule === 'z' ? '' : `.${rule}`;
    emit(m.name, `resolve-quality.recall@1${tag}`, cv.recallAt1, 'ratio');
    emit(m.name, `resolve-quality.recall@5${tag}`, cv.recallAt5, 'ratio');
    emit(m.name, `resolve-quality.recall@5-fraction${tag}`, cv.recallAt5Fraction, 'ratio');
    emit(m.name, `resolve-quality.oos-rejected${tag}`, cv.oosRejected, 'ratio');
    emit(m.name, `resolve-quality.threshold-all-folds${tag}.z`, Number.isFinite(all[0]) ? all[0] : -99, 'z');
    emit(m.name, `resolve-quality.threshold-all-folds${tag}.coverage`, Number.isFinite(all[1]) ? all[1] : -99, 'cos');
    Object.assign(row, {
      [`${rule}:cvR1`]: cv.recallAt1,
      [`${rule}:cvR5`]: cv.recallAt5,
      [`${rule}:oos`]: cv.oosRejected,
      [`${rule}:th`]: all.map((x) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : '-')).join('/'),
    });
  }
  summary.push(row);
  await idx.close();
  await db.close();
}
process.stderr.write(JSON.stringify({ embedder: base.id, objective, defaults: DEFAULT_RANKING }) + '\n');
console.table(
  summary.map((s) =>
    Object.fromEntries(Object.entries(s).map(([k, v]) => [k, typeof v === 'number' ? Math.round(v * 1000) / 1000 : v])),
  ),
);
await base.close?.();
