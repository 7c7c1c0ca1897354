import { existsSync, readFileSync } from 'node:fs';
import hnswlib from 'hnswlib-node';
import type { Embedder } from './embedder.js';
import { insertPoint } from './hnsw.js';
import { Int8Rows } from './int8-rows.js';

const { HierarchicalNSW } = hnswlib;
type Hnsw = InstanceType<typeof HierarchicalNSW>;

/** Lower-cased word tokens (letters and digits; a run of CJK characters is one token). */
export function wordsOf(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/**
 * The words that can say what a text is about: a token of digits alone (a count, an id, a
 * version part) has no topic a word vector could match, and a registry whose cards carry ids
 * would otherwise grow a word per agent.
 */
export function topicWords(text: string): string[] {
  return wordsOf(text).filter((w) => !/^\p{N}+$/u.test(w));
}

/** The out-of-scope test applies from this many registry words on (the dev set's 60 cards: ~1,700). */
export const MIN_VOCABULARY = 1000;

interface WordEntry {
  /** HNSW label. */
  label: number;
  refs: number;
  /** Row in the int8 copy. */
  row: number;
}

/** What a query's words say about the registry (Vocabulary.analyse). */
export interface QueryWords {
  coverage: number;
  /** Late-interaction score per agent id, in [0, 1]. */
  alignment(agentIds: string[]): Map<string, number>;
}

/** Query word vectors kept between queries (common words recur). */
const QUERY_CACHE = 20_000;

/**
 * The registry's vocabulary: every word of every indexed card, each embedded once on its own
 * (with the index's embedder) and held in a small HNSW index, reference-counted by agents.
 *
 * `coverage(query)` = mean over the query's words of the cosine between the word and its nearest
 * registry word (1 for a word the registry uses). It measures how much of what the query talks
 * about the registry has words for: a query about things no card mentions ("a poem for my
 * grandma", or a language the cards are not written in) scores low even when the sentence
 * encoder still finds a "closest" agent for it. Generic: no word lists, only the registry's own
 * words; the threshold is chosen by cross-validation (bench/resolve-quality).
 */
export class Vocabulary {
  private hnsw: Hnsw;
  private readonly words = new Map<string, WordEntry>();
  private readonly byAgent = new Map<string, string[]>();
  private readonly queryCache = new Map<string, Float32Array>();
  /** Each registry word's vector again, int8 (a quarter of float32), for word alignment. */
  private readonly rows: Int8Rows;
  private nextLabel = 0;
  private free = 0;

  constructor(
    private readonly embedder: Embedder,
    capacity = 4096,
  ) {
    this.hnsw = Vocabulary.fresh(embedder.dim, capacity);
    this.rows = new Int8Rows(embedder.dim);
  }

  private static fresh(dim: number, capacity: number): Hnsw {
    const h = new HierarchicalNSW('cosine', dim);
    h.initIndex({ maxElements: capacity, m: 12, efConstruction: 100, randomSeed: 7, allowReplaceDeleted: true });
    h.setEf(32);
    return h;
  }

  get size(): number {
    return this.words.size;
  }

  /** Sets an agent's words (from its card text); embeds the words the registry did not have. */
  async setAgent(agentId: string, text: string): Promise<void> {
    const next = [...new Set(topicWords(text))];
    const fresh = next.filter((w) => !this.words.has(w));
    const vecs = fresh.length > 0 ? await this.embedder.embed(fresh, { background: true }) : [];
    fresh.forEach((w, i) => {
      if (!this.words.has(w)) this.add(w, vecs[i]!);
    });
    // New references first, then the old ones dropped, so shared words are never deleted in between.
    const counted: string[] = [];
    for (const w of next) {
      const e = this.words.get(w);
      if (!e) continue; // dropped by another agent's removal while this one was embedding
      e.refs++;
      counted.push(w);
    }
    this.removeAgent(agentId);
    this.byAgent.set(agentId, counted);
  }

  removeAgent(agentId: string): void {
    const old = this.byAgent.get(agentId);
    if (!old) return;
    this.byAgent.delete(agentId);
    for (const w of old) {
      const e = this.words.get(w);
      if (!e) continue;
      if (--e.refs <= 0) {
        this.hnsw.markDelete(e.label);
        this.rows.free(e.row);
        this.words.delete(w);
        this.free++;
      }
    }
  }

  /** Mean nearest-registry-word cosine of the query's words, in [0, 1]; 1 for a query with no words. */
  async coverage(query: string): Promise<number> {
    return (await this.analyse(query)).coverage;
  }

  /** `analyseKnown` after embedding the query's words that need a vector. */
  async analyse(query: string): Promise<QueryWords> {
    const unknown = this.wordsToEmbed(query);
    if (unknown.length > 0) this.learn(unknown, await this.embedder.embed(unknown, { interactive: true }));
    return this.analyseKnown(query);
  }

  /**
   * The query's words that have no vector yet (neither registry words nor cached): a caller that
   * embeds the query anyway sends them in the same call, then hands them to `learn`.
   */
  wordsToEmbed(query: string): string[] {
    if (this.words.size === 0) return [];
    return [...new Set(topicWords(query).filter((w) => !this.words.has(w) && !this.queryCache.has(w)))];
  }

  /** Keeps query word vectors (from `wordsToEmbed`) for `analyseKnown` and later queries. */
  learn(words: string[], vectors: Float32Array[]): void {
    words.forEach((w, i) => this.remember(w, vectors[i]!));
  }

  /**
   * The query's words against the registry: `coverage` (above) and `alignment(ids)`, each agent's
   * late-interaction score: the mean over the query's words of the best cosine to one of the
   * agent's own card words (ColBERT-style max-sim, on single-word vectors of the same embedder).
   * A word without a vector (not learnt, or evicted since) counts as unknown.
   */
  analyseKnown(query: string): QueryWords {
    const tokens = topicWords(query);
    if (tokens.length === 0 || this.words.size === 0) return { coverage: 1, alignment: () => new Map() };
    const distinct = [...new Set(tokens)];
    const vecOf = new Map<string, Float32Array>();
    const best = new Map<string, number>();
    for (const w of distinct) {
      const known = this.words.get(w);
      // A word may have left the registry since it was looked up: then it counts as unknown (0).
      const v = known ? this.rows.get(known.row) : this.queryCache.get(w);
      if (v) vecOf.set(w, v);
      let s = 0;
      if (known) s = 1;
      else if (v) {
        try {
          const r = this.hnsw.searchKnn(Array.from(v), 1);
          s = r.distances.length > 0 ? Math.max(0, 1 - r.distances[0]!) : 0;
        } catch {
          s = 0;
        }
      }
      best.set(w, s);
    }
    const coverage = tokens.reduce((a, w) => a + best.get(w)!, 0) / tokens.length;
    const alignment = (agentIds: string[]): Map<string, number> => {
      // Each distinct card word of the candidates is compared with each query word once.
      const sim = new Map<string, Float32Array>();
      const qv = distinct.map((w) => vecOf.get(w));
      const out = new Map<string, number>();
      for (const id of agentIds) {
        const ws = this.byAgent.get(id) ?? [];
        const maxes = new Float32Array(distinct.length).fill(-1);
        for (const w of ws) {
          let row = sim.get(w);
          if (!row) {
            const e = this.words.get(w);
            row = new Float32Array(distinct.length).fill(-1);
            if (e) qv.forEach((q, i) => q && (row![i] = w === distinct[i] ? 1 : this.rows.dot(e.row, q)));
            sim.set(w, row);
          }
          for (let i = 0; i < row.length; i++) if (row[i]! > maxes[i]!) maxes[i] = row[i]!;
        }
        const at = new Map(distinct.map((w, i) => [w, Math.max(0, maxes[i]!)]));
        out.set(id, tokens.reduce((a, w) => a + at.get(w)!, 0) / tokens.length);
      }
      return out;
    };
    return { coverage, alignment };
  }

  /** Serialisable state (the HNSW index is written separately with `writeIndex`). */
  state(): { nextLabel: number; free: number; words: [string, number, number][]; agents: [string, string[]][] } {
    return {
      nextLabel: this.nextLabel,
      free: this.free,
      words: [...this.words].map(([w, e]) => [w, e.label, e.refs]),
      agents: [...this.byAgent],
    };
  }

  async writeIndex(path: string): Promise<void> {
    await this.hnsw.writeIndex(path);
  }

  /** Restores a saved vocabulary; false (and empty) when the files do not fit. */
  async load(path: string, s: ReturnType<Vocabulary['state']>): Promise<boolean> {
    if (!existsSync(path) || readFileSync(path).byteLength === 0) return false;
    const h = new HierarchicalNSW('cosine', this.embedder.dim);
    await h.readIndex(path, true);
    h.setEf(32);
    this.hnsw = h;
    this.nextLabel = s.nextLabel;
    this.free = s.free;
    for (const [w, label, refs] of s.words) {
      this.words.set(w, { label, refs, row: this.rows.add(Float32Array.from(h.getPoint(label))) });
    }
    for (const [a, ws] of s.agents) this.byAgent.set(a, ws);
    return true;
  }

  private add(word: string, v: Float32Array): WordEntry {
    const label = this.nextLabel++;
    insertPoint(this.hnsw, v, label, this.free > 0);
    if (this.free > 0) this.free--;
    const e = { label, refs: 0, row: this.rows.add(v) };
    this.words.set(word, e);
    return e;
  }

  private remember(w: string, v: Float32Array): void {
    if (this.queryCache.size >= QUERY_CACHE) this.queryCache.delete(this.queryCache.keys().next().value!);
    this.queryCache.set(w, v);
  }
}
