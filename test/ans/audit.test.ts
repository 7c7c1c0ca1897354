import { describe, expect, it } from 'vitest';
import { AuditLog } from '../../ans/index.js';
import { openStore, type Db } from '../../src/store/index.js';
import { freshSchemaUrl, pgAvailable } from '../helpers/pg.js';

const backends: [string, () => Promise<Db>][] = [
  ['pglite', () => openStore({})],
  ['postgres', async () => openStore({ databaseUrl: await freshSchemaUrl() })],
];

describe.each(backends)('audit log on %s', (name, open) => {
  it('chains entries and names the first one someone edited', async () => {
    if (name === 'postgres' && !(await pgAvailable())) return;
    const db = await open();
    const log = new AuditLog(db);
    try {
      for (let i = 0; i < 5; i++) {
        await db.transaction((tx) =>
          log.append(tx, {
            actor: 'admin:t',
            action: 'agent.approve',
            subject: `a${i}`,
            detail: { i, z: 'x', a: [1, 2] },
          }),
        );
      }
      await db.transaction((tx) =>
        log.append(tx, [
          { actor: 'x', action: 'batch.1' },
          { actor: 'x', action: 'batch.2' },
        ]),
      );
      expect(await log.verify()).toEqual({ ok: true, checked: 7 });
      const entries = await log.list({ limit: 10 });
      expect(entries[3]!.prevHash).toBe(entries[2]!.hash);

      await db.query("UPDATE audit_log SET actor = 'admin:mallory' WHERE seq = 3");
      expect(await db.query('SELECT 1 FROM audit_outbox')).toEqual([]);
      expect(await log.verify()).toMatchObject({ ok: false, firstBroken: 3, checked: 2 });
    } finally {
      await db.close();
    }
  });

  it('chains entries appended by concurrent writers exactly once, in one unbroken chain', async () => {
    if (name === 'postgres' && !(await pgAvailable())) return;
    const db = await open();
    const log = new AuditLog(db);
    try {
      await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          db.transaction((tx) => log.append(tx, { actor: 'w', action: `a${i}` })).then(() => log.flush()),
        ),
      );
      const v = await log.verify();
      expect(v).toEqual({ ok: true, checked: 40 });
      const actions = (await log.list({ limit: 100 })).map((e) => e.action).sort();
      expect(actions).toEqual(Array.from({ length: 40 }, (_, i) => `a${i}`).sort());
    } finally {
      await db.close();
    }
  });

  it('detects a deleted entry in the middle', async () => {
    if (name === 'postgres' && !(await pgAvailable())) return;
    const db = await open();
    const log = new AuditLog(db);
    try {
      for (let i = 0; i < 4; i++) await db.transaction((tx) => log.append(tx, { actor: 'a', action: `x${i}` }));
      await log.flush();
      await db.query('DELETE FROM audit_log WHERE seq = 2');
      expect(await log.verify()).toMatchObject({ ok: false, firstBroken: 2, why: 'entry missing' });
    } finally {
      await db.close();
    }
  });
});
