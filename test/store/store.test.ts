import { describe, expect, it } from 'vitest';
import { loadMigrations, migrate, MIGRATIONS_DIR, openStore, type Db, type Statement } from '../../src/store/index.js';
import { withoutPgvector } from '../../src/store/migrate.js';
import { ChangeFeed, currentSeq, recordChange, type Change } from '../../src/events/index.js';
import { freshSchemaUrl, pgAvailable } from '../helpers/pg.js';

const backends: [string, () => Promise<Db>][] = [
  ['pglite', () => openStore({})],
  ['postgres', async () => openStore({ databaseUrl: await freshSchemaUrl() })],
];

describe('pglite store', () => {
  it('runs with small shared buffers (they would sit in our process on top of the page cache)', async () => {
    const db = await openStore({});
    try {
      expect(await db.query('SHOW shared_buffers')).toEqual([{ shared_buffers: '32MB' }]);
    } finally {
      await db.close();
    }
  });
});

describe.each(backends)('store on %s', (name, open) => {
  const skip = async () => name === 'postgres' && !(await pgAvailable());

  it('applies every migration once and records it', async () => {
    if (await skip()) return;
    const db = await open();
    try {
      const rows = await db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      expect(rows.map((r) => r.version)).toEqual(loadMigrations(MIGRATIONS_DIR).map((m) => m.version));
      expect(await migrate(db, loadMigrations(MIGRATIONS_DIR))).toEqual([]);
    } finally {
      await db.close();
    }
  });

  it('rolls a failed transaction back completely', async () => {
    if (await skip()) return;
    const db = await open();
    try {
      await expect(
        db.transaction(async (tx) => {
          await tx.query("INSERT INTO settings (key, value) VALUES ('a', '1')");
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect(await db.query("SELECT * FROM settings WHERE key = 'a'")).toEqual([]);
    } finally {
      await db.close();
    }
  });

  it('runs a change with its writes as one atomic statement, outside any transaction', async () => {
    if (await skip()) return;
    const db = await open();
    try {
      const put = (key: string, value: string): Statement => ({
        text: 'INSERT INTO settings (key, value) VALUES ($1, $2)',
        params: [key, value],
      });
      const before = await currentSeq(db);
      const seq = await recordChange(db, 'setting', 'k1', 'setting.changed', [put('k1', '"one"'), put('k2', '"two"')]);
      expect(seq).toBeGreaterThan(before);
      const rows = await db.query<{ key: string; value: string }>(
        "SELECT key, value FROM settings WHERE key IN ('k1', 'k2') ORDER BY key",
      );
      expect(rows).toEqual([
        { key: 'k1', value: 'one' },
        { key: 'k2', value: 'two' },
      ]);
      // A failing write (duplicate key) takes the other write and the change row down with it.
      await expect(
        recordChange(db, 'setting', 'k3', 'setting.changed', [put('k3', '"x"'), put('k1', '"dup"')]),
      ).rejects.toMatchObject({
        code: '23505',
      });
      expect(await db.query("SELECT key FROM settings WHERE key = 'k3'")).toEqual([]);
      expect(await currentSeq(db)).toBe(seq);
    } finally {
      await db.close();
    }
  });

  it('delivers committed changes in seq order through the feed, and none from rolled-back work', async () => {
    if (await skip()) return;
    const db = await open();
    const feed = new ChangeFeed(db);
    try {
      const seen: Change[] = [];
      feed.subscribe((c) => {
        seen.push(c);
      });
      await feed.start(await currentSeq(db), 50);
      const a = await db.transaction((tx) => recordChange(tx, 'agent', 'x', 'agent.changed'));
      await db
        .transaction((tx) =>
          recordChange(tx, 'agent', 'gone', 'agent.changed').then(() => Promise.reject(new Error('no'))),
        )
        .catch(() => undefined);
      const b = await db.transaction((tx) => recordChange(tx, 'agent', 'y', 'agent.changed'));
      feed.poke();
      await feed.waitFor(b);
      expect(seen.map((c) => c.entityId)).toEqual(['x', 'y']);
      expect(seen.map((c) => c.seq)).toEqual([a, b]);
    } finally {
      await feed.stop();
      await db.close();
    }
  });
});

describe('store on postgres, two processes', () => {
  it('runs migrations once when two stores open the same database at the same time', async () => {
    if (!(await pgAvailable())) return;
    const url = await freshSchemaUrl();
    const [a, b] = await Promise.all([openStore({ databaseUrl: url }), openStore({ databaseUrl: url })]);
    try {
      const rows = await a.query<{ n: string }>('SELECT count(*) AS n FROM schema_migrations');
      expect(Number(rows[0]!.n)).toBe(loadMigrations(MIGRATIONS_DIR).length);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("wakes another process's feed through LISTEN/NOTIFY", async () => {
    if (!(await pgAvailable())) return;
    const url = await freshSchemaUrl();
    const a = await openStore({ databaseUrl: url });
    const b = await openStore({ databaseUrl: url });
    // A long poll interval, so only NOTIFY can deliver within the wait below.
    const feed = new ChangeFeed(b);
    try {
      const got = new Promise<Change>((res) => feed.subscribe((c) => res(c)));
      await feed.start(await currentSeq(b), 60_000);
      await a.transaction((tx) => recordChange(tx, 'agent', 'from-a', 'agent.changed'));
      const c = await Promise.race([got, new Promise<null>((r) => setTimeout(() => r(null), 3000))]);
      expect(c?.entityId).toBe('from-a');
    } finally {
      await feed.stop();
      await a.close();
      await b.close();
    }
  });
});

describe('withoutPgvector', () => {
  it.each([
    ['  embedding vector NOT NULL,', '  embedding real[] NOT NULL,'],
    ['  v vector(512),', '  v real[],'],
    ['(v vector)', '(v real[])'],
  ])('rewrites %s', (input, want) => {
    expect(withoutPgvector(input)).toBe(want);
  });
  it('leaves other words alone', () => {
    expect(withoutPgvector('  vectors text, vector_id int,')).toBe('  vectors text, vector_id int,');
  });
});
