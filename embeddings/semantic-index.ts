import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import hnswlib from 'hnswlib-node';
import type { Db } from '../src/store/index.js';
import type { Embedder } from './embedder.js';
import { insertPoint } from './hnsw.js';
import { Int8Rows } from './int8-rows.js';
import { VectorStore } from './vector-store.js';
import { EMB_ERR_CLOSED, EMB_ERR_DIM_MISMATCH } from './errors.js';
import { Bm25 } from './lexical.js';
import { docParts, lexicalText, skillTags, type PartsMode } from './text.js';
import type { AgentDoc, SearchFilter, SearchHit } from './types.js';
import { MIN_VOCABULARY, Vocabulary, type QueryWords } from './vocabulary.js';

const { HierarchicalNSW } = hnswlib;
type Hnsw = InstanceType<typeof HierarchicalNSW>;

/** How a query is ranked; the defaults are the method chosen by bench/resolve-quality. */
export interface RankingOptions {
  /** Which card texts become vectors. */
  parts: PartsMode;
  /** Lower-case card texts and queries before embedding. */
  lowercase: boolean;
  /**
   * How an agent's parts are pooled into one score. 'weighted': cos(card) + wParts * mean cos of
   * the other parts, divided by (1 + wParts). 'maxmean': (max + wMean * mean over all parts) / (1 + wMean).
   */
  pool: 'weighted' | 'maxmean';
  /** 'weighted' pooling: weight of the non-card parts. */
  wParts: number;
  /** 'maxmean' pooling: weight of the mean. */
  wMean: number;
  /** Weight of the BM25 score (standardised over the candidates) in the fusion; 0 = vectors only. */
  wLexical: number;
  /**
   * Calibration: the fused score is a z-score against the background distribution (the query's
   * similarity to a sample of all indexed vectors). `threshold` is the z at which the calibrated
   * score is 0.5; a top hit below it means "nothing confident": empty hits with a reason.
   */
  threshold: number;
  /** Temperature of the logistic that maps z to [0, 1]. */
  temperature: number;
  /**
   * Out-of-scope test on the registry's vocabulary (vocabulary.ts): a query whose words' mean
   * cosine to their nearest card words is below this gets no hits. -Infinity = off (and no
   * vocabulary is kept).
   */
  coverage: number;
  /** The vocabulary test applies only once the registry has this many distinct words. */
  coverageMinWords: number;
  /**
   * Word alignment (late interaction, vocabulary.ts `alignment`): weight of its z-score over the
   * top `alignCandidates` candidates; 0 = off. Needs the vocabulary (coverage on).
   */
  wAlign: number;
  /**
   * How alignment joins the sentence score, both standardised over the candidates: 'max' =
   * max(z sentence, wAlign * z alignment) (CombMAX: a candidate that either view ranks high
   * rises), 'sum' = z sentence + wAlign * z alignment.
   */
  alignFusion: 'max' | 'sum';
  alignCandidates: number;
}

/**
 * Chosen by 5-fold cross-validation on the dev set (bench/resolve-quality, objective 'target':
 * the lowest threshold that refuses 60% of the training folds' out-of-scope queries; README "Quality").
 */
const COVERAGE_DEFAULT = 0.809;

export const DEFAULT_RANKING: RankingOptions = {
  parts: 'card+description',
  lowercase: true,
  pool: 'weighted',
  wParts: 0.5,
  wMean: 1,
  wLexical: 0,
  threshold: 1.5,
  temperature: 0.5,
  coverage: COVERAGE_DEFAULT,
  coverageMinWords: MIN_VOCABULARY,
  wAlign: 0.5,
  alignFusion: 'max',
  alignCandidates: 20,
};

export interface SemanticIndexOptions {
  embedder: Embedder;
  db: Db;
  /** The saved HNSW index lives here; undefined = memory only. */
  dataDir: string | undefined;
  ranking?: Partial<RankingOptions>;
  /** HNSW parameters. */
  m?: number;
  efConstruction?: number;
  efSearch?: number;
  initialCapacity?: number;
}

interface AgentEntry {
  /** The HNSW label of the agent's card vector (part 0); the other parts are int8 rows in memory. */
  label: number;
  parts: number;
  hash: string;
  domain: string;
  protocols: string[];
  tags: string[];
  lex: string;
  seq: number;
}

interface SavedMeta {
  format: 3;
  embedderId: string;
  dim: number;
  lastSeq: number;
  ranking: string;
  nextLabel: number;
  free: number;
  agents: Record<string, AgentEntry>;
}

const INDEX_FILE = 'vectors.hnsw';
const META_FILE = 'vectors.meta.json';
/** Every agent's part vectors but the card (which is in the HNSW file), float32, in the order of `agents`. */
const PARTS_FILE = 'vectors.parts.bin';
/** The vocabulary's HNSW index and its words (vocabulary.ts). */
const VOCAB_INDEX_FILE = 'vocabulary.hnsw';
const VOCAB_META_FILE = 'vocabulary.json';
/** Upserts embedding and storing at once (enough to keep the embedder workers busy). */
const UPSERT_WINDOW = 256;
/** Agents in the background sample (a z-score's spread is estimated to ~5% from 256). */
const BACKGROUND = 256;

/**
 * Generic sentences about nothing in particular, embedded once at start. They join the agents in
 * the background a query's scores are standardised against, so that z-scores mean something in
 * a registry of two or three agents too (with n agents alone, the top z can never exceed
 * sqrt(n - 1)). Deliberately encyclopaedic and unrelated to any agent domain.
 */
const REFERENCE_TEXTS = [
  'The river flows north through a wide valley before reaching the sea.',
  'Photosynthesis turns light, water and carbon dioxide into sugar.',
  'The orchestra rehearsed the second movement twice.',
  'Medieval castles were built with thick stone walls.',
  'A triangle has three sides and three angles.',
  'The museum keeps a collection of ancient coins.',
  'Glaciers carve deep valleys over thousands of years.',
  'The novel follows a family across three generations.',
  'Volcanic soil is often very fertile.',
  'The chess player sacrificed a knight to win the game.',
  'Honeybees communicate through a waggle dance.',
  'The bridge was painted red to resist corrosion.',
  'Ancient Rome had a complex system of aqueducts.',
  'The marathon route passes the old harbour.',
  'Owls hunt mostly at night.',
  'The recipe calls for two eggs and a cup of milk.',
  'Jupiter is the largest planet in the solar system.',
  'The sculpture is made of polished bronze.',
  'Cotton grows best in warm climates.',
  'The poem has fourteen lines and a strict rhyme scheme.',
  'Rain forests are home to many species of frogs.',
  'The library closes early on public holidays.',
  'Tides are caused by the pull of the moon.',
  'The painter used only three colours on the canvas.',
];

/**
 * The semantic index: an in-process HNSW index (hnswlib-node) over one vector per active agent
 * (its whole card), every part vector in memory for re-ranking the HNSW candidates (no per-point
 * reads from hnswlib), BM25 over the card text, and the vectors' durable copy in the store.
 */
export class SemanticIndex {
  private readonly embedder: Embedder;
  private readonly dataDir: string | undefined;
  private readonly ranking: RankingOptions;
  private readonly efSearch: number;
  private hnsw: Hnsw;
  private agents = new Map<string, AgentEntry>();
  /**
   * Each agent's parts after the card (int8: a quarter of float32). The card vector lives only
   * in HNSW: a search returns its distance, so no second copy is kept.
   */
  private readonly partRows: Int8Rows;
  private rowsOf = new Map<string, number[]>();
  private readonly vectors: VectorStore;
  private labelOwner = new Map<number, string>();
  /** BM25 over the card texts, kept only when the lexical side is weighed (wLexical > 0). */
  private readonly bm25: Bm25 | undefined;
  private nextLabel = 0;
  /** Deleted slots that a new point may reuse (allowReplaceDeleted). */
  private free = 0;
  private _lastSeq = 0;
  private closed = false;
  /** The calibration sample: folded into one matrix for weighted pooling, else every part. */
  private background: Background | Float32Array[][] | undefined;
  private reference: Float32Array[][] = [];
  private backgroundAt = -1;
  private readonly chains = new Map<string, Promise<void>>();
  /** Seqs of changes handed over and not yet finished (a seq may carry several agents' changes). */
  private readonly inFlight = new Map<number, number>();
  private working = 0;
  private readonly windowWaiters: (() => void)[] = [];
  /** The registry's words, for the out-of-scope test (undefined when `ranking.coverage` is off). */
  private readonly vocab: Vocabulary | undefined;

  private constructor(opts: SemanticIndexOptions, hnsw: Hnsw) {
    this.embedder = opts.embedder;
    this.dataDir = opts.dataDir;
    this.ranking = { ...DEFAULT_RANKING, ...opts.ranking };
    // The default coverage threshold was chosen on USE-lite's word vectors: with another embedder
    // the test stays off unless a threshold is given (pick one with bench/resolve-quality).
    if (opts.ranking?.coverage === undefined && !opts.embedder.id.startsWith('use-lite')) {
      this.ranking.coverage = -Infinity;
    }
    this.efSearch = opts.efSearch ?? 200;
    this.hnsw = hnsw;
    this.partRows = new Int8Rows(opts.embedder.dim);
    this.bm25 = this.ranking.wLexical > 0 ? new Bm25() : undefined;
    this.vectors = new VectorStore(opts.db, opts.embedder.id, opts.embedder.dim);
    this.vocab =
      Number.isFinite(this.ranking.coverage) && opts.embedder.wordVectors !== false
        ? new Vocabulary(opts.embedder)
        : undefined;
  }

  static async open(opts: SemanticIndexOptions): Promise<SemanticIndex> {
    const dim = opts.embedder.dim;
    const fresh = (): Hnsw => {
      const h = new HierarchicalNSW('cosine', dim);
      h.initIndex({
        maxElements: opts.initialCapacity ?? 1024,
        // M 32, efConstruction 200: recall@10 vs exact 1.00 at 100k agents with ef 200, where M 16
        // gives 0.97 (efConstruction 100) or 0.99 (200); +128 bytes a point, no slower to build
        // or search (bench/resolve/hnsw-params.ts, README "Numbers").
        m: opts.m ?? 32,
        efConstruction: opts.efConstruction ?? 200,
        randomSeed: 100,
        allowReplaceDeleted: true,
      });
      return h;
    };
    const idx = new SemanticIndex(opts, fresh());
    const dir = opts.dataDir;
    if (dir !== undefined) {
      mkdirSync(dir, { recursive: true });
      const metaPath = join(dir, META_FILE);
      const indexPath = join(dir, INDEX_FILE);
      const partsPath = join(dir, PARTS_FILE);
      if (existsSync(metaPath) && existsSync(indexPath) && existsSync(partsPath)) {
        const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as SavedMeta;
        // A saved index made by another embedder or ranking layout is dropped: lastSeq stays 0,
        // the replay re-embeds (vectors in the store are reused only when the embedder matches).
        if (
          meta.format === 3 &&
          meta.embedderId === opts.embedder.id &&
          meta.dim === dim &&
          meta.ranking === idx.layoutKey()
        ) {
          const buf = readFileSync(partsPath);
          const all = new Float32Array(buf.buffer, buf.byteOffset, Math.floor(buf.byteLength / 4));
          const entries = Object.entries(meta.agents);
          const total = entries.reduce((n, [, e]) => n + e.parts - 1, 0);
          if (all.length === total * dim) {
            const h = new HierarchicalNSW('cosine', dim);
            await h.readIndex(indexPath, true);
            idx.hnsw = h;
            idx.nextLabel = meta.nextLabel;
            idx.free = meta.free;
            idx._lastSeq = meta.lastSeq;
            let at = 0;
            for (const [id, e] of entries) {
              idx.agents.set(id, e);
              idx.labelOwner.set(e.label, id);
              const rows: number[] = [];
              for (let i = 1; i < e.parts; i++, at += dim) rows.push(idx.partRows.add(all.subarray(at, at + dim)));
              idx.rowsOf.set(id, rows);
              idx.bm25?.set(id, e.lex);
            }
            await idx.loadVocabulary(dir, meta.embedderId);
          }
        }
      }
    }
    idx.hnsw.setEf(idx.efSearch);
    const refs = await opts.embedder.embed(
      REFERENCE_TEXTS.map((t) => (idx.ranking.lowercase ? t.toLowerCase() : t)),
      { background: true },
    );
    idx.reference = refs.map((v) => [v]);
    return idx;
  }

  /** Restores the saved vocabulary, or rebuilds it from the loaded agents' card texts. */
  private async loadVocabulary(dir: string, embedderId: string): Promise<void> {
    const vocab = this.vocab;
    if (!vocab) return;
    const metaPath = join(dir, VOCAB_META_FILE);
    if (existsSync(metaPath)) {
      const saved = JSON.parse(readFileSync(metaPath, 'utf8')) as { embedderId: string; lastSeq?: number } & Parameters<
        Vocabulary['load']
      >[1];
      // Saved with the same index (same seq): restore; else rebuild from the agents' card texts.
      if (
        saved.embedderId === embedderId &&
        saved.lastSeq === this._lastSeq &&
        (await vocab.load(join(dir, VOCAB_INDEX_FILE), saved))
      )
        return;
    }
    for (const [id, e] of this.agents) await vocab.setAgent(id, e.lex);
  }

  /**
   * The registry change seq up to which every change has been applied (saved with the index; a
   * restart replays what comes after). Changes run concurrently, so this is a low-water mark:
   * below the oldest change still in flight, never just the newest one applied.
   */
  get lastSeq(): number {
    if (this.inFlight.size === 0) return this._lastSeq;
    let oldest = Infinity;
    for (const seq of this.inFlight.keys()) if (seq < oldest) oldest = seq;
    return Math.min(this._lastSeq, oldest - 1);
  }

  /** Resolves when every change handed to the index so far has been applied (or has failed). */
  async settled(): Promise<void> {
    while (this.chains.size > 0) await Promise.allSettled([...this.chains.values()]);
  }

  size(): number {
    return this.agents.size;
  }

  /**
   * Embeds the card (or reuses its vectors from the store), stores and indexes them. Idempotent.
   * Changes to one agent apply in call order; different agents' changes run concurrently (up to
   * UPSERT_WINDOW embedding at once), so callers hand over changes as they come, in seq order.
   */
  upsert(doc: AgentDoc, seq: number): Promise<void> {
    return this.change(doc.id, seq, () => this.window(() => this.doUpsert(doc, seq)));
  }

  /** Removes an agent (markDelete in HNSW, rows deleted from the store). */
  remove(agentId: string, seq: number): Promise<void> {
    return this.change(agentId, seq, async () => {
      this.assertOpen();
      const e = this.agents.get(agentId);
      if (e && e.seq > seq) return;
      this.dropFromIndex(agentId);
      this.vocab?.removeAgent(agentId);
      await this.vectors.remove(agentId);
      this.bumpSeq(seq);
    });
  }

  async search(
    query: string,
    opts: { k: number; filter?: SearchFilter },
  ): Promise<{ hits: SearchHit[]; reason?: string }> {
    const k = Math.max(1, Math.floor(opts.k));
    const { ranked, reason, coverage } = await this.rank(query, { k, ...(opts.filter ? { filter: opts.filter } : {}) });
    if (reason !== undefined) return { hits: [], reason };
    const r = this.ranking;
    // Out of scope: the query's words are not the registry's (coverage is only computed once the
    // registry has coverageMinWords words: three cards have too few to judge a query by).
    if (coverage !== undefined && coverage < r.coverage) {
      return { hits: [], reason: 'the query is about things no registered agent describes' };
    }
    if (ranked[0]!.z < r.threshold) {
      return { hits: [], reason: 'no agent matches the query confidently enough' };
    }
    return {
      hits: ranked.slice(0, k).map((s) => ({ id: s.id, score: round(sigmoid((s.z - r.threshold) / r.temperature)) })),
    };
  }

  /**
   * The candidates of a query with their uncalibrated fused z-scores, best first, before the
   * confidence threshold (for benchmarks and threshold selection), and the query's vocabulary
   * coverage when the out-of-scope test is on.
   */
  async rank(
    query: string,
    opts: { k: number; filter?: SearchFilter },
  ): Promise<{ ranked: { id: string; z: number }[]; reason?: string; coverage?: number }> {
    this.assertOpen();
    const k = Math.max(1, Math.floor(opts.k));
    const text = query.normalize('NFKC').trim();
    if (text.length === 0) return { ranked: [], reason: 'empty query' };
    if (this.agents.size === 0) return { ranked: [], reason: 'no agents are indexed' };
    const r = this.ranking;
    // The query's new words go to the embedder in the same call as the query: one worker message.
    const vocab = this.vocab && (r.wAlign > 0 || this.vocab.size >= r.coverageMinWords) ? this.vocab : undefined;
    const unknown = vocab?.wordsToEmbed(text) ?? [];
    const [qv, ...wordVecs] = await this.embedder.embed([r.lowercase ? text.toLowerCase() : text, ...unknown], {
      interactive: true,
    });
    vocab?.learn(unknown, wordVecs);
    const words = vocab?.analyseKnown(text);
    const coverage = this.vocab && this.vocab.size >= r.coverageMinWords ? words?.coverage : undefined;
    const q = qv!;
    const { mu, sd } = this.backgroundStats(q);

    const allowAgent = this.agentFilter(opts.filter);
    const live = this.agents.size;
    const want = Math.min(live, Math.max(64, k * 16));
    // Candidate -> cosine to its card vector (HNSW distances are 1 - cosine).
    const candidates = new Map<string, number | undefined>();
    if (want > 0) {
      // Unfiltered first and filtered after: hnswlib calls a filter back into JS for every point
      // it visits. Only when the filter drops most candidates (a domain or tag filter) is the
      // search repeated with the filter inside, so that `want` matching agents are found.
      const take = (res: { neighbors: number[]; distances: number[] }) =>
        res.neighbors.forEach((l, i) => {
          const id = this.labelOwner.get(l);
          if (id !== undefined && allowAgent(id)) candidates.set(id, 1 - res.distances[i]!);
        });
      take(this.knn(q, want));
      if (candidates.size < want / 2) {
        take(
          this.knn(q, want, (label) => {
            const id = this.labelOwner.get(label);
            return id !== undefined && allowAgent(id);
          }),
        );
      }
    }
    let lex: Map<string, number> | undefined;
    if (r.wLexical > 0) {
      lex = this.bm25?.score(text) ?? new Map<string, number>();
      const top = [...lex.entries()].filter(([id]) => allowAgent(id)).sort((a, b) => b[1] - a[1]);
      for (const [id] of top.slice(0, Math.max(20, k * 4))) if (!candidates.has(id)) candidates.set(id, undefined);
    }
    if (candidates.size === 0) return { ranked: [], reason: 'no agent matches the filter' };

    const scored: { id: string; z: number }[] = [];
    for (const [id, card] of candidates) {
      const cos = card ?? dotF(q, this.cardVector(id));
      const others = this.rowsOf.get(id)!.map((row) => this.partRows.dot(row, q));
      scored.push({ id, z: (this.pool(cos, others) - mu) / sd });
    }
    if (lex && r.wLexical > 0) {
      const vals = scored.map((s) => lex.get(s.id) ?? 0);
      const m = vals.reduce((a, b) => a + b, 0) / vals.length;
      const v = Math.sqrt(vals.reduce((a, b) => a + (b - m) ** 2, 0) / vals.length) || 1;
      scored.forEach((s, i) => (s.z += r.wLexical * ((vals[i]! - m) / v)));
    }
    scored.sort((a, b) => b.z - a.z);
    if (words && r.wAlign > 0) this.align(scored, words);
    return coverage === undefined ? { ranked: scored } : { ranked: scored, coverage };
  }

  /** For benchmarks: the agents whose card vectors HNSW finds nearest to `v` (no filter, no ranking). */
  nearestCards(v: Float32Array, k: number): string[] {
    return this.knn(v, Math.min(k, this.agents.size)).neighbors.map((l) => this.labelOwner.get(l)!);
  }

  /** Writes the HNSW index and its sidecar (embedder id, dim, lastSeq, agents) to the data dir. */
  async save(): Promise<void> {
    if (this.dataDir === undefined || this.closed) return;
    const meta: SavedMeta = {
      format: 3,
      embedderId: this.embedder.id,
      dim: this.embedder.dim,
      lastSeq: this.lastSeq,
      ranking: this.layoutKey(),
      nextLabel: this.nextLabel,
      free: this.free,
      agents: Object.fromEntries(this.agents),
    };
    const indexPath = join(this.dataDir, INDEX_FILE);
    const metaPath = join(this.dataDir, META_FILE);
    const partsPath = join(this.dataDir, PARTS_FILE);
    const dim = this.embedder.dim;
    const all = new Float32Array(Object.values(meta.agents).reduce((n, e) => n + e.parts - 1, 0) * dim);
    let at = 0;
    for (const id of Object.keys(meta.agents))
      for (const row of this.rowsOf.get(id)!) all.set(this.partRows.get(row), (at += dim) - dim);
    await this.hnsw.writeIndex(indexPath + '.tmp');
    writeFileSync(metaPath + '.tmp', JSON.stringify(meta));
    writeFileSync(partsPath + '.tmp', new Uint8Array(all.buffer, all.byteOffset, all.byteLength));
    renameSync(indexPath + '.tmp', indexPath);
    renameSync(partsPath + '.tmp', partsPath);
    renameSync(metaPath + '.tmp', metaPath);
    if (this.vocab) {
      const vPath = join(this.dataDir, VOCAB_INDEX_FILE);
      const vMeta = join(this.dataDir, VOCAB_META_FILE);
      await this.vocab.writeIndex(vPath + '.tmp');
      writeFileSync(
        vMeta + '.tmp',
        JSON.stringify({ embedderId: this.embedder.id, lastSeq: meta.lastSeq, ...this.vocab.state() }),
      );
      renameSync(vPath + '.tmp', vPath);
      renameSync(vMeta + '.tmp', vMeta);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.settled();
    await this.save();
    this.closed = true;
  }

  /** Deletes the saved files (e.g. for a rebuild from scratch). */
  static discardSaved(dataDir: string): void {
    rmSync(join(dataDir, INDEX_FILE), { force: true });
    rmSync(join(dataDir, META_FILE), { force: true });
    rmSync(join(dataDir, PARTS_FILE), { force: true });
    rmSync(join(dataDir, VOCAB_INDEX_FILE), { force: true });
    rmSync(join(dataDir, VOCAB_META_FILE), { force: true });
  }

  // ---- internals

  private layoutKey(): string {
    return `${this.ranking.parts}|${this.ranking.lowercase ? 'lc' : 'cs'}`;
  }

  /** An agent's pooled score from its card cosine and the cosines of its other parts. */
  private pool(card: number, others: number[]): number {
    const r = this.ranking;
    if (others.length === 0) return card;
    if (r.pool === 'weighted') {
      const mean = others.reduce((a, b) => a + b, 0) / others.length;
      return (card + r.wParts * mean) / (1 + r.wParts);
    }
    const max = Math.max(card, ...others);
    const mean = (card + others.reduce((a, b) => a + b, 0)) / (others.length + 1);
    return (max + r.wMean * mean) / (1 + r.wMean);
  }

  /** A copy of the agent's card vector out of HNSW (for candidates that no vector search found). */
  private cardVector(id: string): Float32Array {
    return Float32Array.from(this.hnsw.getPoint(this.agents.get(id)!.label));
  }

  /**
   * Re-ranks the top candidates (sorted, in place) by sentence score fused with word alignment,
   * both standardised over those candidates. The fused key is mapped back onto the sentence z
   * scale (mean + sd * key), so a candidate the sentence score already ranks keeps its z and the
   * calibration still applies; the key is never below a candidate's own sentence z, so the
   * re-ranked head stays above the rest.
   */
  private align(scored: { id: string; z: number }[], words: QueryWords): void {
    const r = this.ranking;
    const head = scored.slice(0, Math.min(scored.length, r.alignCandidates));
    if (head.length < 3) return;
    const al = words.alignment(head.map((s) => s.id));
    const zs = standardise(head.map((s) => s.z));
    const za = standardise(head.map((s) => al.get(s.id) ?? 0));
    head.forEach((s, i) => {
      const key = r.alignFusion === 'max' ? Math.max(zs.z[i]!, r.wAlign * za.z[i]!) : zs.z[i]! + r.wAlign * za.z[i]!;
      s.z = zs.mean + zs.sd * key;
    });
    head.sort((a, b) => b.z - a.z);
    scored.splice(0, head.length, ...head);
  }

  /** Runs one change of an agent after its earlier ones, counting its seq as in flight until done. */
  private change(id: string, seq: number, fn: () => Promise<void>): Promise<void> {
    this.inFlight.set(seq, (this.inFlight.get(seq) ?? 0) + 1);
    const leave = () => {
      const n = this.inFlight.get(seq)! - 1;
      if (n > 0) this.inFlight.set(seq, n);
      else this.inFlight.delete(seq);
    };
    const done = this.serial(id, fn);
    done.then(leave, leave);
    return done;
  }

  /** Bounds the upserts working at once (each holds its texts and vectors until stored). */
  private async window<T>(fn: () => Promise<T>): Promise<T> {
    // A finishing upsert hands its slot straight to the next waiter, so the bound is exact.
    if (this.working >= UPSERT_WINDOW) await new Promise<void>((r) => this.windowWaiters.push(r));
    else this.working++;
    try {
      return await fn();
    } finally {
      const next = this.windowWaiters.shift();
      if (next) next();
      else this.working--;
    }
  }

  private serial(id: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.chains.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.chains.set(id, tail);
    void tail.then(() => {
      if (this.chains.get(id) === tail) this.chains.delete(id);
    });
    return next;
  }

  private async doUpsert(doc: AgentDoc, seq: number): Promise<void> {
    this.assertOpen();
    const cur = this.agents.get(doc.id);
    if (cur && cur.seq > seq) return;
    const texts = docParts(doc, this.ranking.parts, this.ranking.lowercase);
    const hash = sha256(texts.join('\u0000'));
    const meta = {
      domain: normName(doc.domain),
      protocols: doc.protocols.map((p) => p.toLowerCase()),
      tags: skillTags(doc),
      lex: lexicalText(doc),
    };
    if (cur && cur.hash === hash) {
      // Same texts: only the filter fields may have changed; no re-embedding, no new points.
      Object.assign(cur, meta, { seq });
      this.bm25?.set(doc.id, cur.lex);
      await this.vocab?.setAgent(doc.id, cur.lex);
      this.bumpSeq(seq);
      return;
    }
    const stored = await this.vectors.stored(doc.id, hash, texts.length);
    const vecs = stored ?? (await this.embedder.embed(texts, { background: true }));
    for (const v of vecs) if (v.length !== this.embedder.dim) throw EMB_ERR_DIM_MISMATCH(this.embedder.dim, v.length);
    this.assertOpen();
    this.dropFromIndex(doc.id);
    const label = this.addPoint(vecs[0]!, doc.id);
    const entry: AgentEntry = { label, parts: vecs.length, hash, seq, ...meta };
    this.agents.set(doc.id, entry);
    this.rowsOf.set(
      doc.id,
      vecs.slice(1).map((v) => this.partRows.add(v)),
    );
    this.bm25?.set(doc.id, entry.lex);
    await this.vocab?.setAgent(doc.id, entry.lex);
    if (!stored) await this.vectors.save(doc.id, hash, seq, vecs);
    this.bumpSeq(seq);
  }

  private addPoint(v: Float32Array, agentId: string): number {
    const label = this.nextLabel++;
    insertPoint(this.hnsw, v, label, this.free > 0);
    if (this.free > 0) this.free--;
    this.labelOwner.set(label, agentId);
    return label;
  }

  private dropFromIndex(agentId: string): void {
    const e = this.agents.get(agentId);
    if (!e) return;
    this.hnsw.markDelete(e.label);
    this.labelOwner.delete(e.label);
    this.free++;
    this.agents.delete(agentId);
    for (const row of this.rowsOf.get(agentId) ?? []) this.partRows.free(row);
    this.rowsOf.delete(agentId);
    this.bm25?.delete(agentId);
  }

  private bumpSeq(seq: number): void {
    if (seq > this._lastSeq) this._lastSeq = seq;
  }

  private knn(
    q: Float32Array,
    want: number,
    filter?: (label: number) => boolean,
  ): { neighbors: number[]; distances: number[] } {
    try {
      return filter ? this.hnsw.searchKnn(Array.from(q), want, filter) : this.hnsw.searchKnn(Array.from(q), want);
    } catch {
      return { neighbors: [], distances: [] };
    }
  }

  private agentFilter(f: SearchFilter | undefined): (id: string) => boolean {
    if (!f) return () => true;
    const domain = f.domain === undefined ? undefined : normName(f.domain);
    const protocol = f.protocol?.toLowerCase();
    const tag = f.skillTag?.toLowerCase();
    return (id) => {
      const e = this.agents.get(id);
      if (!e) return false;
      if (domain !== undefined && e.domain !== domain) return false;
      if (protocol !== undefined && !e.protocols.includes(protocol)) return false;
      if (tag !== undefined && !e.tags.includes(tag)) return false;
      return f.allow ? f.allow(id) : true;
    };
  }

  /**
   * Mean and spread of the query's pooled score over a sample of all indexed agents (up to
   * BACKGROUND, refreshed when the index has grown or shrunk by a quarter), plus the reference
   * sentences while the registry is smaller than the sample: the z-score of a candidate says how
   * far it stands out from "any agent" for this query.
   */
  private backgroundStats(q: Float32Array): { mu: number; sd: number } {
    const count = this.agents.size;
    if (!this.background || count > this.backgroundAt * 1.25 || count < this.backgroundAt * 0.8) {
      const ids = [...this.agents.keys()];
      const step = Math.max(1, ids.length / BACKGROUND);
      const sample: Float32Array[][] = [];
      for (let i = 0; i < ids.length && sample.length < BACKGROUND; i += step) {
        const id = ids[Math.floor(i)]!;
        sample.push([this.cardVector(id), ...this.rowsOf.get(id)!.map((row) => this.partRows.get(row))]);
      }
      if (sample.length < BACKGROUND) sample.push(...this.reference);
      this.background = this.ranking.pool === 'weighted' ? new Background(sample, this.ranking.wParts) : sample;
      this.backgroundAt = count;
    }
    if (this.background instanceof Background) return this.background.stats(q);
    const n = this.background.length;
    if (n < 2) return { mu: 0, sd: 0.1 };
    let s = 0;
    let s2 = 0;
    for (const parts of this.background) {
      const d = this.pool(
        dotF(q, parts[0]!),
        parts.slice(1).map((p) => dotF(q, p)),
      );
      s += d;
      s2 += d * d;
    }
    const mu = s / n;
    return { mu, sd: Math.sqrt(Math.max(1e-6, s2 / n - mu * mu)) };
  }

  private assertOpen(): void {
    if (this.closed) throw EMB_ERR_CLOSED();
  }
}

/**
 * The calibration sample for weighted pooling, which is linear in the query: each sample agent's
 * parts fold into one vector, (card + wParts * mean of the others) / (1 + wParts), and the rows
 * sit in one matrix, so a query's background costs one pass over it.
 */
class Background {
  private readonly m: Float32Array;
  private readonly dim: number;
  readonly length: number;

  constructor(sample: Float32Array[][], wParts: number) {
    this.length = sample.length;
    this.dim = sample[0]?.[0]?.length ?? 0;
    this.m = new Float32Array(this.length * this.dim);
    sample.forEach((parts, r) => {
      const row = this.m.subarray(r * this.dim, (r + 1) * this.dim);
      row.set(parts[0]!);
      if (parts.length < 2) return;
      const w = wParts / (parts.length - 1);
      for (const p of parts.slice(1)) for (let i = 0; i < this.dim; i++) row[i]! += w * p[i]!;
      for (let i = 0; i < this.dim; i++) row[i]! /= 1 + wParts;
    });
  }

  stats(q: Float32Array): { mu: number; sd: number } {
    const n = this.length;
    if (n < 2) return { mu: 0, sd: 0.1 };
    const { m, dim } = this;
    let s = 0;
    let s2 = 0;
    for (let r = 0, at = 0; r < n; r++, at += dim) {
      let d = 0;
      for (let i = 0; i < dim; i++) d += m[at + i]! * q[i]!;
      s += d;
      s2 += d * d;
    }
    const mu = s / n;
    return { mu, sd: Math.sqrt(Math.max(1e-6, s2 / n - mu * mu)) };
  }
}

function dotF(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** z-scores of `xs` with the mean and spread they were taken with (spread 1 when flat). */
function standardise(xs: number[]): { z: number[]; mean: number; sd: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length) || 1;
  return { z: xs.map((x) => (x - mean) / sd), mean, sd };
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function normName(s: string): string {
  return s.toLowerCase().replace(/\.$/, '');
}
