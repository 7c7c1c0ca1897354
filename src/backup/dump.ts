import { createHash } from 'node:crypto';
import type { Db, Queryable } from '../store/index.js';
import {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  type BackupHeader,
  type BackupSummary,
  type SequencesLine,
  type TableStart,
  type Trailer,
} from './format.js';
import { appliedMigrations, ident, sequences, tables, type TableInfo } from './schema.js';

const PAGE = 1000;

function rowSelect(t: TableInfo): string {
  // to_jsonb keeps every type's exact text form (timestamps, bytea, bigint); vectors become
  // JSON arrays so a store without pgvector (real[] columns) can take them.
  const vec = t.vectorColumns.map((c) => `'${c}', t.${ident(c)}::real[]`).join(', ');
  return vec
    ? `SELECT (to_jsonb(t) || jsonb_build_object(${vec}))::text AS j FROM ${ident(t.name)} t`
    : `SELECT to_jsonb(t)::text AS j FROM ${ident(t.name)} t`;
}

/**
 * Writes a consistent copy of the whole store to `write` (one call per line, awaited, so the
 * caller's stream applies backpressure). Runs in one REPEATABLE READ transaction: every table is
 * read from the same snapshot while other writers go on (on PGlite, which has one connection,
 * they wait until the copy is done).
 */
export async function dumpStore(
  db: Db,
  write: (line: string) => Promise<void>,
  now: () => Date = () => new Date(),
): Promise<BackupSummary> {
  return db.transaction(async (tx) => {
    await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const hash = createHash('sha256');
    const emitLine = async (json: string) => {
      const line = `${json}\n`;
      hash.update(line);
      await write(line);
    };
    const emit = (obj: unknown) => emitLine(JSON.stringify(obj));
    const header: BackupHeader = {
      format: BACKUP_FORMAT,
      version: BACKUP_VERSION,
      createdAt: now().toISOString(),
      store: db.kind,
      migrations: await appliedMigrations(tx),
    };
    await emit(header);
    const list = await tables(tx);
    let rows = 0;
    for (const t of list) {
      const [c] = await tx.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${ident(t.name)}`);
      const start: TableStart = { table: t.name, rows: Number(c?.n ?? 0) };
      await emit(start);
      rows += await copyRows(tx, t, emitLine);
    }
    const seqs: SequencesLine = { sequences: {} };
    for (const s of await sequences(tx)) {
      const [v] = await tx.query<{ last_value: string; is_called: boolean }>(
        `SELECT last_value::text AS last_value, is_called FROM ${ident(s)}`,
      );
      if (v) seqs.sequences[s] = [v.last_value, v.is_called];
    }
    await emit(seqs);
    const sha256 = hash.digest('hex');
    const trailer: Trailer = { end: { tables: list.length, rows, sha256 } };
    await write(`${JSON.stringify(trailer)}\n`);
    return { tables: list.length, rows, sha256 };
  });
}

async function copyRows(tx: Queryable, t: TableInfo, emit: (json: string) => Promise<void>): Promise<number> {
  await tx.query(`DECLARE ans_backup NO SCROLL CURSOR FOR ${rowSelect(t)}`);
  let n = 0;
  for (;;) {
    const page = await tx.query<{ j: string }>(`FETCH FORWARD ${PAGE} FROM ans_backup`);
    for (const r of page) await emit(r.j);
    n += page.length;
    if (page.length < PAGE) break;
  }
  await tx.query('CLOSE ans_backup');
  return n;
}
