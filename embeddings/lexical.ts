/**
 * In-process BM25 over the same card text that is embedded. Kept in memory beside the HNSW index
 * (and saved with it); PostgreSQL full text was not used because the dev-set bench measured BM25
 * with a light stemmer the same or better, and it works identically on PGlite and PostgreSQL
 * without a trip to the database per query.
 */

// A generic English stop-word list (function words only); nothing here is specific to any data set.
const STOP = new Set(
  (
    'a an and are as at be been but by can could do does did for from has have had he her his how i ' +
    'if in into is it its me my of on or our she so some than that the their them then there these ' +
    'they this to too us was we were what when where which who why will with would you your yours ' +
    "am any all also about just not no can't cannot i'm it's don't get got want need please"
  ).split(/\s+/),
);

/** Lower-cased NFKC word tokens (Unicode letters and digits), stop words dropped, lightly stemmed. */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  for (const m of text
    .normalize('NFKC')
    .toLowerCase()
    .matchAll(/[\p{L}\p{N}]+(?:['’][\p{L}]+)?/gu)) {
    const w = m[0].replace(/['’]/g, "'");
    if (STOP.has(w) || w.length < 2) continue;
    out.push(stem(w));
  }
  return out;
}

/** A light, generic English suffix stripper (plural, -ing, -ed, -ly); keeps short words intact. */
export function stem(w: string): string {
  if (w.length <= 3) return w;
  if (w.endsWith("'s")) w = w.slice(0, -2);
  if (w.endsWith('ies') && w.length > 4) return w.slice(0, -3) + 'y';
  if (w.endsWith('sses')) return w.slice(0, -2);
  if (w.endsWith('ing') && w.length > 5) return undouble(w.slice(0, -3));
  if (w.endsWith('ed') && w.length > 4) return undouble(w.slice(0, -2));
  if (w.endsWith('ly') && w.length > 4) return w.slice(0, -2);
  if (w.endsWith('s') && !w.endsWith('ss') && !w.endsWith('us') && !w.endsWith('is')) return w.slice(0, -1);
  return w;
}

function undouble(w: string): string {
  const n = w.length;
  if (n > 2 && w[n - 1] === w[n - 2] && !'lsz'.includes(w[n - 1]!)) return w.slice(0, -1);
  if (w.endsWith('at') || w.endsWith('iz') || w.endsWith('bl')) return w + 'e';
  return w;
}

export interface Bm25Options {
  k1?: number;
  b?: number;
}

/** Okapi BM25 over one text per document. */
export class Bm25 {
  private readonly postings = new Map<string, Map<string, number>>();
  private readonly lengths = new Map<string, number>();
  private readonly terms = new Map<string, string[]>();
  private totalLength = 0;
  private readonly k1: number;
  private readonly b: number;

  constructor(opts: Bm25Options = {}) {
    this.k1 = opts.k1 ?? 1.2;
    this.b = opts.b ?? 0.75;
  }

  get size(): number {
    return this.lengths.size;
  }

  set(id: string, text: string): void {
    this.delete(id);
    const toks = tokenize(text);
    const tf = new Map<string, number>();
    for (const t of toks) tf.set(t, (tf.get(t) ?? 0) + 1);
    for (const [t, n] of tf) {
      let p = this.postings.get(t);
      if (!p) this.postings.set(t, (p = new Map()));
      p.set(id, n);
    }
    this.terms.set(id, [...tf.keys()]);
    this.lengths.set(id, toks.length);
    this.totalLength += toks.length;
  }

  delete(id: string): void {
    const terms = this.terms.get(id);
    if (!terms) return;
    for (const t of terms) {
      const p = this.postings.get(t);
      p?.delete(id);
      if (p && p.size === 0) this.postings.delete(t);
    }
    this.totalLength -= this.lengths.get(id) ?? 0;
    this.lengths.delete(id);
    this.terms.delete(id);
  }

  /** Scores of every document sharing a term with the query (unsorted). */
  score(query: string): Map<string, number> {
    const scores = new Map<string, number>();
    const n = this.lengths.size;
    if (n === 0) return scores;
    const avg = this.totalLength / n;
    for (const t of new Set(tokenize(query))) {
      const p = this.postings.get(t);
      if (!p) continue;
      const idf = Math.log(1 + (n - p.size + 0.5) / (p.size + 0.5));
      for (const [id, tf] of p) {
        const len = this.lengths.get(id) ?? 0;
        const s = (idf * tf * (this.k1 + 1)) / (tf + this.k1 * (1 - this.b + (this.b * len) / avg));
        scores.set(id, (scores.get(id) ?? 0) + s);
      }
    }
    return scores;
  }
}
