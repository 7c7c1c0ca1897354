import { defineError } from '../src/errors/index.js';

/** Catalogue of embeddings errors. Codes are stable; retired codes are never reused. */
export const EMB_ERR_UNKNOWN_EMBEDDER = defineError(
  'EMB_ERR_UNKNOWN_EMBEDDER',
  500,
  (kind: string) => `unknown embedder kind '${kind}'`,
);
export const EMB_ERR_MODEL_DIR = defineError(
  'EMB_ERR_MODEL_DIR',
  500,
  (why: string) => `cannot load the local embedding model: ${why}`,
);
export const EMB_ERR_EMBED_FAILED = defineError(
  'EMB_ERR_EMBED_FAILED',
  500,
  (why: string) => `embedding failed: ${why}`,
);
export const EMB_ERR_DIM_MISMATCH = defineError(
  'EMB_ERR_DIM_MISMATCH',
  500,
  (want: number, got: number) => `embedder returned ${got} dimensions, index expects ${want}`,
);
export const EMB_ERR_CLOSED = defineError('EMB_ERR_CLOSED', 503, () => 'the semantic index is closed');
export const EMB_ERR_BAD_QUERY = defineError('EMB_ERR_BAD_QUERY', 400, (reason: string) => reason);
