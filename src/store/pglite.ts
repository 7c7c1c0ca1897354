import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import type { Db, Queryable } from './db.js';

function wrapTx(tx: Transaction): Queryable {
  return {
    async query<T>(sql: string, params?: readonly unknown[]) {
      const r = await tx.query<T>(sql, params as unknown[] | undefined);
      return r.rows;
    },
    async exec(sql: string) {
      await tx.exec(sql);
    },
  };
}

/**
 * PostgreSQL's default 128 MB of shared buffers live inside PGlite's WASM heap, in our process,
 * on top of the OS page cache that holds the same files. 32 MB keeps ANS's working set (the
 * registry is read from in-process projections) and measured 130-165 MB less RSS at 10k rows.
 */
const PGLITE_CONF = ['shared_buffers = 32MB'];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * PGlite's files belong to one process: a second one opening them corrupts the store. `<dir>.lock`
 * holds the owner's pid; a lock whose process is gone (kill -9) is taken over.
 */
function lockDir(dir: string): () => void {
  const lock = `${dir}.lock`;
  for (let i = 0; i < 3; i++) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx', mode: 0o600 });
      return () => rmSync(lock, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = Number(readFileSync(lock, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && alive(pid))
      throw new Error(`the embedded store ${dir} is in use by process ${pid} (one process at a time; stop it first)`);
    rmSync(lock, { force: true });
  }
  throw new Error(`cannot take the lock ${lock}`);
}

/**
 * Creating a cluster (initdb) leaves ~175 MB of WASM and JS memory in the process that ran it
 * (measured: a fresh data dir opens at 365 MB RSS, an existing one at 190 MB), so a new data dir
 * is initialised by a short-lived child process and then opened here like an existing one.
 */
async function initInChild(dir: string): Promise<void> {
  if (existsSync(join(dir, 'PG_VERSION'))) return;
  const script = new URL('./pglite-init.mjs', import.meta.url);
  try {
    await promisify(execFile)(process.execPath, [fileURLToPath(script), dir, JSON.stringify(PGLITE_CONF)]);
  } catch (e) {
    throw new Error(`cannot create the embedded store in ${dir}: ${(e as { stderr?: string }).stderr ?? String(e)}`);
  }
}

/** Embedded PostgreSQL (WASM) persisted under `dir`; the default store. One process at a time. */
export async function openPglite(dir: string | undefined): Promise<Db> {
  let unlock = () => {};
  if (dir) {
    mkdirSync(dir, { recursive: true });
    unlock = lockDir(dir);
  }
  try {
    if (dir) await initInChild(dir);
    return await open(dir, unlock);
  } catch (e) {
    unlock();
    throw e;
  }
}

async function open(dir: string | undefined, unlock: () => void): Promise<Db> {
  const opts = { extensions: { vector }, postgresqlconf: PGLITE_CONF };
  // `new PGlite(undefined, opts)` ignores opts, so the in-memory form passes opts alone.
  const pg = dir ? new PGlite(dir, opts) : new PGlite(opts);
  await pg.waitReady;
  await pg.exec('CREATE EXTENSION IF NOT EXISTS vector');
  return {
    kind: 'pglite',
    hasVector: true,
    async query<T>(sql: string, params?: readonly unknown[]) {
      const r = await pg.query<T>(sql, params as unknown[] | undefined);
      return r.rows;
    },
    async exec(sql: string) {
      await pg.exec(sql);
    },
    transaction: (fn) => pg.transaction((tx) => fn(wrapTx(tx))),
    async listen(channel, onNotify) {
      const unlisten = await pg.listen(channel, onNotify);
      return async () => {
        await unlisten();
      };
    },
    async close() {
      await pg.close();
      unlock();
    },
  };
}
