import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmbedder, type Embedder } from '../../embeddings/index.js';
import { loadDevSet } from './devset.js';

// The USE-lite graph rebuilt for onnxruntime-node (embeddings/use-onnx.mjs) must give the
// vectors the package's own tfjs graph gives, so stored vectors stay valid across backends.
describe('USE-lite on onnxruntime-node matches the tfjs graph', () => {
  let onnx: Embedder & { backend?: string };
  let tfjs: Embedder & { backend?: string };

  beforeAll(async () => {
    [onnx, tfjs] = await Promise.all([
      createEmbedder({ kind: 'use', threads: 1, backend: 'onnx' }),
      createEmbedder({ kind: 'use', threads: 1, backend: 'tfjs' }),
    ]);
  }, 120_000);

  afterAll(async () => {
    await onnx?.close?.();
    await tfjs?.close?.();
  });

  it('runs on the requested backends with the same id and dimension', () => {
    expect(onnx.backend).toBe('onnx');
    expect(tfjs.backend).toBe('tfjs');
    expect(onnx.id).toBe(tfjs.id);
    expect(onnx.dim).toBe(512);
  });

  it('gives the same unit vectors (cosine > 0.9999) for queries, cards, edge cases, in batches and alone', async () => {
    const set = loadDevSet();
    const long = set.agents
      .slice(0, 3)
      .map((a) => a.description)
      .join(' '); // > 128 tokens: both clip
    const texts = [
      ...set.queries.slice(0, 12).map((q) => q.q),
      ...set.queries.filter((q) => q.kind === 'non-english').map((q) => q.q),
      ...set.agents.slice(0, 8).map((a) => `${a.name}. ${a.description}`.toLowerCase()),
      long,
      'x',
      '',
      '   ',
    ];
    const [a, b] = await Promise.all([onnx.embed(texts), tfjs.embed(texts)]);
    const single = await Promise.all(texts.slice(0, 4).map(async (t) => (await onnx.embed([t]))[0]!));
    for (let i = 0; i < texts.length; i++) {
      const u = a[i]!;
      const v = b[i]!;
      expect(u.length).toBe(512);
      let dot = 0;
      let norm = 0;
      for (let j = 0; j < 512; j++) {
        dot += u[j]! * v[j]!;
        norm += u[j]! * u[j]!;
      }
      expect(norm).toBeCloseTo(1, 4);
      expect(dot, texts[i]).toBeGreaterThan(0.9999);
      if (i < single.length) {
        let d2 = 0;
        for (let j = 0; j < 512; j++) d2 += u[j]! * single[i]![j]!;
        expect(d2).toBeGreaterThan(0.9999);
      }
    }
  }, 120_000);
});
