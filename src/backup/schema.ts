/**
 * What a backup covers, read from the catalog rather than listed by hand, so a table that a new
 * migration adds is backed up without anyone remembering to add it here.
 */
import type { Queryable } from '../store/index.js';

/** The migration runner's own bookkeeping: recorded in the header, never copied as data. */
const SKIPPED = new Set(['schema_migrations']);

export interface TableInfo {
  name: string;
  /** pgvector columns: dumped as real[] so the file restores where pgvector is missing. */
  vectorColumns: string[];
}

export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Our tables, parents before the tables whose foreign keys point at them. */
export async function tables(db: Queryable): Promise<TableInfo[]> {
  const rows = await db.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.relname`,
  );
  const names = rows.map((r) => r.name).filter((n) => !SKIPPED.has(n));
  const fks = await db.query<{ child: string; parent: string }>(
    `SELECT c.relname AS child, p.relname AS parent FROM pg_constraint k
       JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE k.contype = 'f' AND n.nspname = current_schema()`,
  );
  const vectors = await db.query<{ table_name: string; column_name: string }>(
    `SELECT table_name, column_name FROM information_schema.columns
      WHERE table_schema = current_schema() AND udt_name = 'vector'`,
  );
  const parents = new Map<string, Set<string>>(names.map((n) => [n, new Set<string>()]));
  for (const f of fks) if (f.child !== f.parent) parents.get(f.child)?.add(f.parent);
  const ordered: string[] = [];
  const placed = new Set<string>();
  const visit = (n: string, path: Set<string>) => {
    if (placed.has(n) || path.has(n)) return;
    path.add(n);
    for (const p of parents.get(n) ?? []) visit(p, path);
    placed.add(n);
    ordered.push(n);
  };
  for (const n of names) visit(n, new Set());
  return ordered.map((name) => ({
    name,
    vectorColumns: vectors.filter((v) => v.table_name === name).map((v) => v.column_name),
  }));
}

export async function sequences(db: Queryable): Promise<string[]> {
  const rows = await db.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND c.relkind = 'S' ORDER BY c.relname`,
  );
  return rows.map((r) => r.name);
}

export async function appliedMigrations(db: Queryable): Promise<string[]> {
  const rows = await db.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name');
  return rows.map((r) => r.name);
}
