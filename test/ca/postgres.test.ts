/**
 * The CA against a real PostgreSQL (127.0.0.1:5432, database `test`), in a fresh schema per
 * run: bootstrap race between two processes, issue, revoke, CRL, and cross-process freshness.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { openStore, type Db } from '../../src/store/index.js';
import { CertificateAuthority } from '../../ca/index.js';
import { ZONE, openssl, opensslCsr, splitPem, tempDir, write } from './helpers.js';
import { toPem } from '../../ca/x509.js';

const BASE = 'postgres://postgres@127.0.0.1:5432/test';
const schema = `ca_test_${process.pid}_${Date.now()}`;
const tmp = tempDir();
let available = false;
let dbA: Db;
let dbB: Db;

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: BASE, connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.end();
    available = true;
  } catch (e) {
    console.warn(`[test/ca/postgres] SKIPPED: no PostgreSQL at ${BASE} (${(e as Error).message})`);
    return;
  }
  const url = `${BASE}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  dbA = await openStore({ databaseUrl: url });
  dbB = await openStore({ databaseUrl: url });
});

afterAll(async () => {
  if (available) {
    await dbA.close();
    await dbB.close();
    const admin = new pg.Client({ connectionString: BASE });
    await admin.connect();
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  }
  tmp.cleanup();
});

describe('CA on PostgreSQL', () => {
  it('two processes starting together create one hierarchy; issue/revoke/CRL agree across them', async (ctx) => {
    if (!available) return ctx.skip();
    const opts = { zone: ZONE, publicUrl: 'http://127.0.0.1:8080', passphrase: 'pw', recheckMs: 50 };
    const [a, b] = await Promise.all([
      CertificateAuthority.open({ ...opts, db: dbA }),
      CertificateAuthority.open({ ...opts, db: dbB }),
    ]);
    expect(a.chainPem()).toBe(b.chainPem());
    expect(await dbA.query("SELECT id FROM ca_keys WHERE role IN ('root','issuing') ORDER BY id")).toEqual([
      { id: 'issuing-1' },
      { id: 'root-1' },
    ]);

    const fqdn = 'pg.agents.internal';
    const { csr } = opensslCsr(tmp.dir, 'P-256', { cn: fqdn });
    const cert = await a.issue({ subjectId: 'pg-1', fqdn, uri: `ans://v1.0.0.${fqdn}`, csrPem: csr });
    const parts = splitPem(cert.chainPem);
    const root = write(tmp.dir, 'root.pem', parts[1]!);
    const int = write(tmp.dir, 'int.pem', parts[0]!);
    const leaf = write(tmp.dir, 'leaf.pem', cert.pem);
    expect(openssl(['verify', '-CAfile', root, '-untrusted', int, leaf]).out).toContain(': OK');
    expect((await b.current('pg-1'))?.serial).toBe(cert.serial);

    await b.crl(); // cache B's CRL before the revocation
    await a.revokeSubject('pg-1', 'cessationOfOperation');
    await new Promise((r) => setTimeout(r, 120));
    const crl = write(tmp.dir, 'crl.pem', toPem('X509 CRL', await b.crl()));
    const v = openssl(['verify', '-crl_check', '-CAfile', root, '-untrusted', int, '-CRLfile', crl, leaf]);
    expect(v.out).toMatch(/certificate revoked/);
    expect((await b.current('pg-1'))?.status).toBe('revoked');
  });
});
