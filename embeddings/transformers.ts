import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Embedder } from './embedder.js';
import { normalize } from './embedder.js';
import { EMB_ERR_EMBED_FAILED, EMB_ERR_MODEL_DIR } from './errors.js';

/** The slice of a transformers.js feature-extraction pipeline this embedder uses. */
type FeatureExtractor = ((
  texts: string[],
  opts: { pooling: 'mean' | 'cls'; normalize: boolean },
) => Promise<{ data: Float32Array | number[]; dims: number[] }>) & { dispose?: () => Promise<void> };

/**
 * A transformers.js (`@huggingface/transformers`) feature-extraction model loaded from a local
 * directory only (remote models disabled): `<modelDir>/config.json`, `tokenizer.json`,
 * `tokenizer_config.json` and `onnx/model.onnx` (or `onnx/model_quantized.onnx`). Mean pooling,
 * unit length. This is the path for MiniLM/bge/e5 and multilingual models (see README.md).
 * onnxruntime runs the model off the event loop. Session options are given explicitly: one
 * intra-op thread, no spinning (a spinning pool thread doubles the CPU of a small run and
 * competes with the USE-lite workers on a 2-core machine).
 */
export async function createTransformersEmbedder(modelDir: string): Promise<Embedder> {
  if (!modelDir) throw EMB_ERR_MODEL_DIR('no model directory given');
  const dir = resolve(modelDir);
  if (!existsSync(join(dir, 'tokenizer.json'))) throw EMB_ERR_MODEL_DIR(`${dir}/tokenizer.json is missing`);
  const quantized =
    !existsSync(join(dir, 'onnx', 'model.onnx')) && existsSync(join(dir, 'onnx', 'model_quantized.onnx'));
  if (!quantized && !existsSync(join(dir, 'onnx', 'model.onnx')))
    throw EMB_ERR_MODEL_DIR(`${dir}/onnx/model.onnx is missing`);
  const tf = await import('@huggingface/transformers');
  tf.env.allowRemoteModels = false;
  tf.env.allowLocalModels = true;
  tf.env.localModelPath = dirname(dir) + '/';
  let extractor: FeatureExtractor;
  try {
    extractor = (await tf.pipeline('feature-extraction', basename(dir), {
      dtype: quantized ? 'q8' : 'fp32',
      device: 'cpu',
      local_files_only: true,
      session_options: {
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
      },
    })) as unknown as FeatureExtractor;
  } catch (e) {
    throw EMB_ERR_MODEL_DIR(e instanceof Error ? e.message : String(e));
  }
  const run = async (texts: string[]): Promise<Float32Array[]> => {
    if (texts.length === 0) return [];
    let out: { data: Float32Array | number[]; dims: number[] };
    try {
      out = await extractor(texts, { pooling: 'mean', normalize: false });
    } catch (e) {
      throw EMB_ERR_EMBED_FAILED(e instanceof Error ? e.message : String(e));
    }
    const dim = out.dims[out.dims.length - 1]!;
    const data = Float32Array.from(out.data);
    return texts.map((_, i) => normalize(data.slice(i * dim, (i + 1) * dim)));
  };
  const dim = (await run(['probe']))[0]!.length;
  const config = readFileSync(join(dir, 'config.json'), 'utf8');
  const id = `transformers:${basename(dir)}:${fingerprint(config)}:${dim}`;
  return {
    id,
    dim,
    embed: run,
    async close() {
      await extractor.dispose?.();
    },
  };
}

function fingerprint(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16);
}
