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
 * A transformers.js (`@xenova/transformers`) feature-extraction model loaded from a local
 * directory only (remote models disabled): `<modelDir>/config.json`, `tokenizer.json`,
 * `tokenizer_config.json` and `onnx/model.onnx` (or `onnx/model_quantized.onnx`). Mean pooling,
 * unit length. This is the path for MiniLM/bge/e5 and multilingual models (see README.md).
 * onnxruntime runs the model on its own threads, so the event loop stays free.
 */
export async function createTransformersEmbedder(modelDir: string): Promise<Embedder> {
  if (!modelDir) throw EMB_ERR_MODEL_DIR('no model directory given');
  const dir = resolve(modelDir);
  if (!existsSync(join(dir, 'tokenizer.json'))) throw EMB_ERR_MODEL_DIR(`${dir}/tokenizer.json is missing`);
  const quantized =
    !existsSync(join(dir, 'onnx', 'model.onnx')) && existsSync(join(dir, 'onnx', 'model_quantized.onnx'));
  if (!quantized && !existsSync(join(dir, 'onnx', 'model.onnx')))
    throw EMB_ERR_MODEL_DIR(`${dir}/onnx/model.onnx is missing`);
  const tf = await import('@xenova/transformers');
  tf.env.allowRemoteModels = false;
  tf.env.allowLocalModels = true;
  tf.env.localModelPath = dirname(dir) + '/';
  let extractor: FeatureExtractor;
  try {
    extractor = (await tf.pipeline('feature-extraction', basename(dir), { quantized })) as unknown as FeatureExtractor;
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
