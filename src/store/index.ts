import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Db } from './db.js';
import { openPglite } from './pglite.js';
import { openPostgres } from './postgres.js';
import { loadMigrations, migrate } from './migrate.js';

export type { Db, DbKind, Queryable } from './db.js';
export { migrate, loadMigrations, type Migration } from './migrate.js';
export { combine, type Statement } from './statement.js';

/** The package root: the nearest directory above this file with a package.json (from src/ or dist/src/). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

export const MIGRATIONS_DIR = join(packageRoot(), 'migrations');

export interface StoreOptions {
  /** postgres://... to use a server; otherwise PGlite in `dataDir` (in memory when undefined). */
  databaseUrl?: string | undefined;
  dataDir?: string | undefined;
}

/** Opens the configured database and brings its schema up to date. */
export async function openStore(opts: StoreOptions): Promise<Db> {
  const db = opts.databaseUrl
    ? await openPostgres(opts.databaseUrl)
    : await openPglite(opts.dataDir === undefined ? undefined : join(opts.dataDir, 'pgdata'));
  try {
    await migrate(db, loadMigrations(MIGRATIONS_DIR));
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
  return db;
}
