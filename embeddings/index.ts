/**
 * embeddings/: the Embedder interface and its implementations, the vector index and hybrid
 * ranking. Other folders import only this file.
 */
export type { Embedder, EmbedderSpec } from './embedder.js';
export { createEmbedder } from './embedder.js';
export type { AgentDoc, SearchFilter, SearchHit } from './types.js';
export { SemanticIndex, DEFAULT_RANKING, type RankingOptions, type SemanticIndexOptions } from './semantic-index.js';
export { screenText, type ScreenResult } from './screen.js';
export { docParts, type PartsMode } from './text.js';
export { Vocabulary, wordsOf, MIN_VOCABULARY } from './vocabulary.js';
export * from './errors.js';
