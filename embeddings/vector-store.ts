import type { Db } from '../src/store/index.js';

interface Lookup {
  agentId: string;
  hash: string;
  parts: number;
  resolve: (v: Float32Array[] | undefined) => void;
  reject: (e: unknown) => void;
}

interface Write {
  agentId: string;
  hash: string;
  seq: number;
  vecs: Float32Array[];
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** Rows per INSERT statement (parameters stay far below PostgreSQL's 65535). */
const ROWS_PER_INSERT = 256;
/**
 * Writes wait up to this long (or until WRITE_GROUP agents are waiting) to share one
 * transaction: each commit is a WAL flush, and on this sandbox every file write is a dear syscall.
 */
const WRITE_DELAY_MS = 20;
const WRITE_GROUP = 256;

/**
 * The durable copy of the part vectors (`agent_vectors`), with calls made in the same turn of
 * the event loop grouped: one SELECT for all lookups, one transaction for the writes of up to 20 ms. A bulk
 * load of thousands of concurrent upserts then costs a few statements per group instead of
 * five per agent (PGlite runs on the main thread, so statements are CPU the embedder needs).
 */
export class VectorStore {
  private lookups: Lookup[] = [];
  private writes: Write[] = [];
  private lookupTimer: NodeJS.Immediate | undefined;
  private writeTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Db,
    private readonly embedderId: string,
    private readonly dim: number,
  ) {}

  /** The agent's stored vectors when they were made by this embedder from the same texts. */
  stored(agentId: string, hash: string, parts: number): Promise<Float32Array[] | undefined> {
    return new Promise((resolve, reject) => {
      this.lookups.push({ agentId, hash, parts, resolve, reject });
      this.lookupTimer ??= setImmediate(() => void this.flushLookups());
    });
  }

  /** Replaces the agent's rows. */
  save(agentId: string, hash: string, seq: number, vecs: Float32Array[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.writes.push({ agentId, hash, seq, vecs, resolve, reject });
      if (this.writes.length >= WRITE_GROUP) void this.flushWrites();
      else this.writeTimer ??= setTimeout(() => void this.flushWrites(), WRITE_DELAY_MS);
    });
  }

  async remove(agentId: string): Promise<void> {
    await this.db.query('DELETE FROM agent_vectors WHERE agent_id = $1', [agentId]);
  }

  private async flushLookups(): Promise<void> {
    const batch = this.lookups;
    this.lookups = [];
    this.lookupTimer = undefined;
    try {
      // Only the primary key in the WHERE: with `embedder = $2` too, the planner may walk the
      // embedder index, i.e. every row (one embedder), making a bulk load quadratic.
      const rows = await this.db.query<{
        agent_id: string;
        embedder: string;
        text_hash: string;
        part: number;
        embedding: string;
      }>(
        'SELECT agent_id, embedder, text_hash, part, embedding::text AS embedding FROM agent_vectors WHERE agent_id = ANY($1) ORDER BY agent_id, part',
        [[...new Set(batch.map((l) => l.agentId))]],
      );
      const byAgent = new Map<string, typeof rows>();
      for (const r of rows) {
        const list = byAgent.get(r.agent_id) ?? [];
        list.push(r);
        byAgent.set(r.agent_id, list);
      }
      for (const l of batch) {
        const mine = (byAgent.get(l.agentId) ?? []).filter(
          (r) => r.embedder === this.embedderId && r.text_hash === l.hash,
        );
        l.resolve(mine.length === l.parts ? mine.map((r) => parseVector(r.embedding)) : undefined);
      }
    } catch (e) {
      for (const l of batch) l.reject(e);
    }
  }

  private async flushWrites(): Promise<void> {
    // The last write per agent wins (an agent's upserts are serialised by the index anyway).
    const batch = this.writes;
    this.writes = [];
    clearTimeout(this.writeTimer);
    this.writeTimer = undefined;
    const last = new Map(batch.map((w) => [w.agentId, w]));
    const cast = this.db.hasVector ? 'vector' : 'real[]';
    try {
      await this.db.transaction(async (tx) => {
        await tx.query('DELETE FROM agent_vectors WHERE agent_id = ANY($1)', [[...last.keys()]]);
        const rows: string[] = [];
        let params: unknown[] = [this.embedderId, this.dim];
        const flush = async () => {
          if (rows.length === 0) return;
          await tx.query(
            `INSERT INTO agent_vectors (agent_id, part, embedder, dim, text_hash, seq, embedding) VALUES ${rows.join(', ')}`,
            params,
          );
          rows.length = 0;
          params = [this.embedderId, this.dim];
        };
        for (const w of last.values()) {
          for (let i = 0; i < w.vecs.length; i++) {
            params.push(w.agentId, i, w.hash, w.seq, vectorLiteral(w.vecs[i]!, this.db.hasVector));
            const n = params.length;
            rows.push(`($${n - 4}, $${n - 3}, $1, $2, $${n - 2}, $${n - 1}, $${n}::${cast})`);
            if (rows.length >= ROWS_PER_INSERT) await flush();
          }
        }
        await flush();
      });
      for (const w of batch) w.resolve();
    } catch (e) {
      for (const w of batch) w.reject(e);
    }
  }
}

/**
 * pgvector text `[..]` or a PostgreSQL array `{..}`. Eight significant digits (float32 carries
 * ~7.2; relative error < 1e-8) are about half the text of a double's shortest form: less to
 * format here and to parse in the store, which runs on this thread (PGlite).
 */
function vectorLiteral(v: Float32Array, pgvector: boolean): string {
  const parts = new Array<string>(v.length);
  for (let i = 0; i < v.length; i++) parts[i] = v[i]!.toPrecision(8);
  return pgvector ? `[${parts.join(',')}]` : `{${parts.join(',')}}`;
}

/** Parses pgvector text `[1,2]` or a PostgreSQL array `{1,2}`. */
export function parseVector(text: string): Float32Array {
  const body = text.trim().slice(1, -1);
  return Float32Array.from(body.length === 0 ? [] : body.split(',').map(Number));
}
