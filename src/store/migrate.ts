import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Db } from './db.js';

// Any constant works; it only has to be the same for every process sharing the database.
const MIGRATION_LOCK = 7_264_101;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function loadMigrations(dir: string): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{3}_[\w-]+\.sql$/.test(f))
    .sort()
    .map((f) => ({
      version: Number(f.slice(0, 3)),
      name: f,
      sql: readFileSync(join(dir, f), 'utf8'),
    }));
}

/**
 * Applies pending migrations, one transaction per file. Each transaction takes an advisory
 * lock and re-checks `schema_migrations`, so two processes starting together apply each file once.
 * Columns typed `vector` or `vector(N)` fall back to `real[]` on a server without pgvector, so one
 * set of files serves both.
 */
export async function migrate(db: Db, migrations: readonly Migration[]): Promise<number[]> {
  await db
    .exec(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
       version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    )
    .catch(async () => {
      // Two processes may race on CREATE TABLE IF NOT EXISTS; the loser retries once.
      await db.exec('SELECT 1 FROM schema_migrations LIMIT 1');
    });
  const applied: number[] = [];
  for (const m of migrations) {
    const did = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      const seen = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [m.version]);
      if (seen.length > 0) return false;
      const sql = db.hasVector ? m.sql : withoutPgvector(m.sql);
      await tx.exec(sql);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      return true;
    });
    if (did) applied.push(m.version);
  }
  return applied;
}

/** Rewrites pgvector column types to `real[]` (a column type is preceded by whitespace). */
export function withoutPgvector(sql: string): string {
  return sql.replace(/(\s)vector(\(\d+\))?(?=[\s,)])/gi, '$1real[]');
}
