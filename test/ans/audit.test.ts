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
  it('retention removes old entries, keeps the chain verifiable, and still catches removals beyond it', async () => {
    if (name === 'postgres' && !(await pgAvailable())) return;
    const db = await open();
    let t = Date.parse('2026-01-01T00:00:00Z');
    const log = new AuditLog(db, () => new Date(t));
    const day = 86_400_000;
    try {
      for (let i = 0; i < 6; i++) {
        await db.transaction((tx) => log.append(tx, { actor: 'a', action: `old${i}` }));
        await log.flush();
      }
      t += 10 * day;
      for (let i = 0; i < 3; i++) await db.transaction((tx) => log.append(tx, { actor: 'a', action: `new${i}` }));
      await log.flush();

      expect(await log.prune(new Date(t - 5 * day))).toBe(6);
      const kept = await log.list({ limit: 100 });
      expect(kept.map((e) => e.action)).toEqual(['new0', 'new1', 'new2', 'audit.pruned']);
      expect(kept[3]!.detail).toMatchObject({ removed: 6, anchor: { seq: 7 } });
      expect(await log.verify()).toEqual({ ok: true, checked: 4 });
      // Nothing more is old enough: a second run removes nothing, and never the newest entry.
      expect(await log.prune(new Date(t - 5 * day))).toBe(0);
      expect(await log.prune(new Date(t + 365 * day))).toBe(3);
      expect(await log.verify()).toMatchObject({ ok: true });

      await db.transaction((tx) => log.append(tx, { actor: 'a', action: 'later' }));
      await log.flush();
      const first = (await log.list({ limit: 1 }))[0]!;
      await db.query('DELETE FROM audit_log WHERE seq = $1', [first.seq]);
      expect(await log.verify()).toMatchObject({ ok: false, firstBroken: first.seq, why: 'entry missing' });
    } finally {
      await db.close();
    }
  });

  it('retention: moving the anchor by hand is caught', async () => {
    if (name === 'postgres' && !(await pgAvailable())) return;
    const db = await open();
    let t = Date.parse('2026-01-01T00:00:00Z');
    const log = new AuditLog(db, () => new Date(t));
    try {
      for (let i = 0; i < 5; i++) await db.transaction((tx) => log.append(tx, { actor: 'a', action: `x${i}` }));
      t += 86_400_000;
      await db.transaction((tx) => log.append(tx, { actor: 'a', action: 'y' }));
      expect(await log.prune(new Date(t - 1000))).toBe(5);
      // Someone deletes the oldest kept entry and moves the anchor past it to hide that.
      const [e] = await db.query<{ seq: string; hash: string }>('SELECT seq, hash FROM audit_log ORDER BY seq LIMIT 1');
      await db.query('DELETE FROM audit_log WHERE seq = $1', [e!.seq]);
      await db.query("UPDATE settings SET value = $1::jsonb WHERE key = 'audit.anchor'", [
        JSON.stringify({ seq: Number(e!.seq) + 1, prevHash: e!.hash }),
      ]);
      expect(await log.verify()).toMatchObject({ ok: false, why: 'the retention anchor was moved' });
    } finally {
      await db.close();
    }
  });
});
