-- Embedding vectors for the semantic index (embeddings/). The store is the durable copy; the
-- in-process HNSW index in the data dir is the query path. One row per embedded part of an
-- agent's card (part 0 = the whole card, indexed in HNSW; then the description or, in the
-- other layouts, sentences and skills; see embeddings/text.ts).
-- `embedding` is pgvector's `vector` where the server has it, `real[]` otherwise (the runner
-- rewrites the type); no pgvector index on purpose (DESIGN.md section 3).
CREATE TABLE agent_vectors (
  agent_id   text    NOT NULL,
  part       integer NOT NULL,
  embedder   text    NOT NULL,
  dim        integer NOT NULL,
  text_hash  text    NOT NULL,
  seq        bigint  NOT NULL,
  embedding  vector NOT NULL,
  PRIMARY KEY (agent_id, part)
);
CREATE INDEX agent_vectors_embedder ON agent_vectors (embedder);
