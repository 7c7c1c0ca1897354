import pg from 'pg';

export const PG_BASE = process.env['ANS_TEST_PG'] ?? 'postgres://postgres@127.0.0.1:5432/test';

let available: boolean | undefined;

/** Whether the test PostgreSQL answers; tests that need it skip visibly when it does not. */
export async function pgAvailable(): Promise<boolean> {
  if (available !== undefined) return available;
  const c = new pg.Client({ connectionString: PG_BASE, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    available = true;
  } catch {
    available = false;
    process.stderr.write(`\n*** PostgreSQL at ${PG_BASE} does not answer: PostgreSQL store tests are SKIPPED ***\n\n`);
  } finally {
    await c.end().catch(() => undefined);
  }
  return available;
}

/** A fresh schema per test run, so runs and parallel files never see each other's rows. */
export async function freshSchemaUrl(): Promise<string> {
  const schema = `ans_t_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const c = new pg.Client({ connectionString: PG_BASE });
  await c.connect();
  await c.query(`CREATE SCHEMA ${schema}`);
  await c.end();
  const u = new URL(PG_BASE);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}
