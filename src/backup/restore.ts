import { createHash } from 'node:crypto';
import type { Db, Queryable } from '../store/index.js';
import { BackupErrors } from './errors.js';
import {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  type BackupHeader,
  type BackupSummary,
  type SequencesLine,
  type TableStart,
  type Trailer,
} from './format.js';
import { appliedMigrations, ident, tables } from './schema.js';

export type BackupEvent =
  | { kind: 'header'; header: BackupHeader }
  | { kind: 'table'; table: string; rows: number }
  | { kind: 'row'; json: string }
  | { kind: 'sequences'; sequences: SequencesLine['sequences'] }
  | { kind: 'end'; summary: BackupSummary };

function parse(line: string, n: number): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    throw BackupErrors.badFile(`line ${n} is not JSON`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Reads a backup's lines and checks their structure as it goes; the last event comes only once
 * the trailer's counts and SHA-256 match what was read, so a consumer that applies the events
 * inside a transaction commits nothing from a truncated or edited file.
 */
export async function* readBackup(lines: AsyncIterable<string>): AsyncGenerator<BackupEvent> {
  const hash = createHash('sha256');
  let n = 0;
  let state: 'header' | 'tables' | 'rows' | 'sequences' | 'end' | 'done' = 'header';
  let left = 0;
  let table = '';
  let tableCount = 0;
  let rowCount = 0;
  for await (const line of lines) {
    n++;
    if (state === 'done') {
      if (line.trim() === '') continue;
      throw BackupErrors.badFile(`data after the end marker (line ${n})`);
    }
    const v = state === 'rows' ? undefined : parse(line, n);
    if (state !== 'end') hash.update(`${line}\n`);
    if (state === 'rows') {
      if (!line.startsWith('{')) throw BackupErrors.badFile(`line ${n}: a row of ${table} must be a JSON object`);
      rowCount++;
      if (--left === 0) state = 'tables';
      yield { kind: 'row', json: line };
      continue;
    }
    if (!isObject(v)) throw BackupErrors.badFile(`line ${n} is not a JSON object`);
    if (state === 'header') {
      if (v['format'] !== BACKUP_FORMAT) throw BackupErrors.badFile('the first line is not an ans-backup header');
      if (v['version'] !== BACKUP_VERSION)
        throw BackupErrors.badFile(`format version ${String(v['version'])} (this ANS reads ${BACKUP_VERSION})`);
      const m = v['migrations'];
      if (!Array.isArray(m) || !m.every((x) => typeof x === 'string'))
        throw BackupErrors.badFile('the header has no migrations list');
      state = 'tables';
      yield { kind: 'header', header: v as unknown as BackupHeader };
    } else if (state === 'tables' && typeof v['table'] === 'string') {
      const t = v as unknown as TableStart;
      if (!Number.isInteger(t.rows) || t.rows < 0) throw BackupErrors.badFile(`line ${n}: bad row count`);
      table = t.table;
      left = t.rows;
      tableCount++;
      if (left > 0) state = 'rows';
      yield { kind: 'table', table: t.table, rows: t.rows };
    } else if (state === 'tables' && isObject(v['sequences'])) {
      const seqs = v['sequences'];
      for (const [k, val] of Object.entries(seqs))
        if (!Array.isArray(val) || !/^\d+$/.test(String(val[0])) || typeof val[1] !== 'boolean')
          throw BackupErrors.badFile(`line ${n}: bad value for sequence ${k}`);
      state = 'end';
      yield { kind: 'sequences', sequences: seqs as SequencesLine['sequences'] };
    } else if (state === 'end' && isObject(v['end'])) {
      const end = (v as unknown as Trailer).end;
      const sha256 = hash.digest('hex');
      if (end.sha256 !== sha256) throw BackupErrors.badFile('the checksum does not match: the file was changed');
      if (end.rows !== rowCount || end.tables !== tableCount)
        throw BackupErrors.badFile('the row or table count does not match the end marker');
      state = 'done';
      yield { kind: 'end', summary: { tables: tableCount, rows: rowCount, sha256 } };
    } else {
      throw BackupErrors.badFile(`unexpected line ${n}`);
    }
  }
  if (state !== 'done') throw BackupErrors.badFile('the file ends early (no end marker): it is truncated');
}

const BATCH = 500;

/**
 * Loads a backup into `db` in one transaction: all of it or, on any error, nothing. The target
 * must be empty unless `force`, which first empties every table. Sequences continue where the
 * source's stood, so change numbers (and the DNS serial) keep going up.
 */
export async function restoreStore(
  db: Db,
  lines: AsyncIterable<string>,
  opts: { force?: boolean } = {},
): Promise<BackupSummary> {
  return db.transaction(async (tx) => {
    const known = new Set((await tables(tx)).map((t) => t.name));
    const ours = new Set(await appliedMigrations(tx));
    let summary: BackupSummary | undefined;
    let table = '';
    let batch: string[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const sql = `INSERT INTO ${ident(table)} SELECT * FROM jsonb_populate_recordset(NULL::${ident(table)}, $1::jsonb)`;
      try {
        await tx.query(sql, [`[${batch.join(',')}]`]);
      } catch (e) {
        throw BackupErrors.badFile(`rows of ${table} do not load: ${(e as Error).message}`);
      }
      batch = [];
    };
    for await (const ev of readBackup(lines)) {
      if (ev.kind === 'header') {
        const unknown = ev.header.migrations.filter((m) => !ours.has(m));
        if (unknown.length) throw BackupErrors.schema(`it was made by a newer ANS (migrations ${unknown.join(', ')})`);
        await emptyOrForce(tx, [...known], opts.force === true);
      } else if (ev.kind === 'table') {
        await flush();
        if (!known.has(ev.table)) throw BackupErrors.schema(`unknown table ${ev.table}`);
        table = ev.table;
      } else if (ev.kind === 'row') {
        batch.push(ev.json);
        if (batch.length >= BATCH) await flush();
      } else if (ev.kind === 'sequences') {
        await flush();
        for (const [name, [value, called]] of Object.entries(ev.sequences))
          await tx.query('SELECT setval($1, $2::bigint, $3)', [ident(name), value, called]);
      } else {
        summary = ev.summary;
      }
    }
    return summary!;
  });
}

/** Tables that only a running ANS fills; migrations seed others (ca_state...), which a restore replaces. */
const IN_USE_MARKERS = ['agents', 'ca_keys', 'admin_tokens', 'changes'];

async function emptyOrForce(tx: Queryable, names: string[], force: boolean): Promise<void> {
  if (!force)
    for (const t of IN_USE_MARKERS.filter((m) => names.includes(m))) {
      const r = await tx.query(`SELECT 1 FROM ${ident(t)} LIMIT 1`);
      if (r.length) throw BackupErrors.notEmpty(t);
    }
  if (names.length) await tx.query(`TRUNCATE ${names.map(ident).join(', ')} RESTART IDENTITY CASCADE`);
}
