/**
 * The backup file: gzip'ed JSON lines, portable between PGlite and PostgreSQL (a backup of the
 * embedded store restores into a server and back).
 *
 *   {"format":"ans-backup","version":1,"createdAt":...,"store":"pglite","migrations":[...]}
 *   {"table":"agents","rows":N}          then N lines, one row each: the row as a JSON object
 *   ...                                  (tables in foreign-key order: parents first)
 *   {"sequences":{"changes_seq_seq":[last_value, is_called], ...}}
 *   {"end":{"tables":T,"rows":R,"sha256":"<hex of every line above, each with its \n>"}}
 *
 * The trailer's hash makes a truncated or edited file fail before anything is committed.
 */
export const BACKUP_FORMAT = 'ans-backup';
export const BACKUP_VERSION = 1;

export interface BackupHeader {
  format: typeof BACKUP_FORMAT;
  version: number;
  createdAt: string;
  store: string;
  /** Names of the migrations the source store had applied. */
  migrations: string[];
}

export interface TableStart {
  table: string;
  rows: number;
}

export interface SequencesLine {
  sequences: Record<string, [string, boolean]>;
}

export interface Trailer {
  end: { tables: number; rows: number; sha256: string };
}

/** What `ans backup` / `ans restore` report. */
export interface BackupSummary {
  tables: number;
  rows: number;
  sha256: string;
}
