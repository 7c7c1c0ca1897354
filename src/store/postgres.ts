import pg from 'pg';
import type { Db, Queryable } from './db.js';

/**
 * Named (server-side prepared) statements: PostgreSQL parses and plans a named statement once
 * per connection instead of on every call, which is most of its CPU for our short statements.
 * Our SQL texts are a small fixed set; past the cap (a caller building texts from data), the
 * statements simply go unnamed, so no connection collects an unbounded number of them.
 */
const MAX_NAMED = 512;
const names = new Map<string, string>();

function config(sql: string, params: readonly unknown[] | undefined): pg.QueryConfig {
  let name = names.get(sql);
  if (name === undefined && names.size < MAX_NAMED) {
    name = `ans_${names.size}`;
    names.set(sql, name);
  }
  return { text: sql, values: params as unknown[] | undefined, ...(name ? { name } : {}) };
}

function wrapClient(client: pg.PoolClient): Queryable {
  return {
    async query<T>(sql: string, params?: readonly unknown[]) {
      const r = await client.query(config(sql, params));
      return r.rows as T[];
    },
    async exec(sql: string) {
      await client.query(sql);
    },
  };
}

/** PostgreSQL through `pg`, used when DATABASE_URL is set; several `ans serve` may share it. */
export async function openPostgres(url: string, poolSize = 10): Promise<Db> {
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  // A broken idle connection must not take the process down; the next query reconnects.
  pool.on('error', () => undefined);
  const probe = await pool.query<{ ok: boolean }>(
    "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') AS ok",
  );
  let hasVector = probe.rows[0]?.ok === true;
  if (hasVector) {
    try {
      await pool.query('CREATE EXTENSION IF NOT EXISTS vector');
    } catch {
      hasVector = false;
    }
  }
  let listener: pg.Client | undefined;
  const handlers = new Map<string, Set<(payload: string) => void>>();

  async function ensureListener(): Promise<pg.Client> {
    if (listener) return listener;
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => undefined);
    c.on('notification', (n) => {
      for (const h of handlers.get(n.channel) ?? []) h(n.payload ?? '');
    });
    await c.connect();
    listener = c;
    return c;
  }

  return {
    kind: 'postgres',
    hasVector,
    async query<T>(sql: string, params?: readonly unknown[]) {
      const r = await pool.query(config(sql, params));
      return r.rows as T[];
    },
    async exec(sql: string) {
      await pool.query(sql);
    },
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const out = await fn(wrapClient(client));
        await client.query('COMMIT');
        return out;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      } finally {
        client.release();
      }
    },
    async listen(channel, onNotify) {
      if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`bad channel name ${channel}`);
      const c = await ensureListener();
      let set = handlers.get(channel);
      if (!set) {
        set = new Set();
        handlers.set(channel, set);
        await c.query(`LISTEN ${channel}`);
      }
      set.add(onNotify);
      return async () => {
        set.delete(onNotify);
      };
    },
    async close() {
      await listener?.end().catch(() => undefined);
      await pool.end();
    },
  };
}
