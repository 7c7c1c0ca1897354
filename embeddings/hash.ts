import type { Embedder } from './embedder.js';
import { normalize } from './embedder.js';
import { tokenize } from './lexical.js';

const DIM = 256;

/**
 * A cheap lexical embedder: signed feature hashing of word tokens and character trigrams.
 * Deterministic, instant, no model; for tests and benchmarks that do not judge ranking quality.
 */
export function createHashEmbedder(dim = DIM): Embedder {
  return {
    id: `hash-v1-${dim}`,
    dim,
    wordVectors: false,
    embed(texts: string[]): Promise<Float32Array[]> {
      return Promise.resolve(texts.map((t) => hashVector(t, dim)));
    },
  };
}

function hashVector(text: string, dim: number): Float32Array {
  const v = new Float32Array(dim);
  for (const tok of tokenize(text)) {
    add(v, tok, 1);
    const padded = ` ${tok} `;
    for (let i = 0; i + 3 <= padded.length; i++) add(v, padded.slice(i, i + 3), 0.3);
  }
  return normalize(v);
}

function add(v: Float32Array, feature: string, weight: number): void {
  // FNV-1a 32-bit
  let h = 0x811c9dc5;
  for (let i = 0; i < feature.length; i++) {
    h ^= feature.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  const idx = (h >>> 1) % v.length;
  v[idx]! += h & 1 ? weight : -weight;
}
