/** Every SQL statement of the CA, in one place. Tables: migrations/002_ca.sql. */
import type { Queryable, Statement } from '../src/store/index.js';
import type { RevocationReason } from './types.js';

export type KeyRole = 'root' | 'issuing' | 'response-signer';

export interface KeyRow {
  id: string;
  role: KeyRole;
  generation: number;
  keyPem: string;
  spkiDer: Uint8Array;
  certDer: Uint8Array | null;
  notAfter: Date | null;
}

export interface CertRow {
  serial: string;
  subjectId: string;
  fqdn: string;
  issuerId: string;
  der: Uint8Array;
  spkiSha256: string;
  notBefore: Date;
  notAfter: Date;
  revokedAt: Date | null;
  reason: RevocationReason | null;
}

interface RawKey {
  id: string;
  role: KeyRole;
  generation: number;
  key_pem: string;
  spki_der: Uint8Array;
  cert_der: Uint8Array | null;
  not_after: Date | string | null;
}

interface RawCert {
  serial: string;
  subject_id: string;
  fqdn: string;
  issuer_id: string;
  der: Uint8Array;
  spki_sha256: string;
  not_before: Date | string;
  not_after: Date | string;
  revoked_at: Date | string | null;
  reason: RevocationReason | null;
}

const date = (v: Date | string): Date => (v instanceof Date ? v : new Date(v));
const bytes = (v: Uint8Array): Uint8Array => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);

function keyRow(r: RawKey): KeyRow {
  return {
    id: r.id,
    role: r.role,
    generation: Number(r.generation),
    keyPem: r.key_pem,
    spkiDer: bytes(r.spki_der),
    certDer: r.cert_der ? bytes(r.cert_der) : null,
    notAfter: r.not_after === null ? null : date(r.not_after),
  };
}

function certRow(r: RawCert): CertRow {
  return {
    serial: r.serial,
    subjectId: r.subject_id,
    fqdn: r.fqdn,
    issuerId: r.issuer_id,
    der: bytes(r.der),
    spkiSha256: r.spki_sha256,
    notBefore: date(r.not_before),
    notAfter: date(r.not_after),
    revokedAt: r.revoked_at === null ? null : date(r.revoked_at),
    reason: r.reason,
  };
}

// Any constant works; it only has to be the same for every process sharing the database.
export const CA_LOCK = 7_264_301;

export async function lockCa(tx: Queryable): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock($1)', [CA_LOCK]);
}

export async function loadKeys(q: Queryable): Promise<KeyRow[]> {
  const rows = await q.query<RawKey>(
    'SELECT id, role, generation, key_pem, spki_der, cert_der, not_after FROM ca_keys ORDER BY role, generation',
  );
  return rows.map(keyRow);
}

export async function insertKey(q: Queryable, k: KeyRow): Promise<void> {
  await q.query(
    `INSERT INTO ca_keys (id, role, generation, key_pem, spki_der, cert_der, not_after)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [
      k.id,
      k.role,
      k.generation,
      k.keyPem,
      Buffer.from(k.spkiDer),
      k.certDer ? Buffer.from(k.certDer) : null,
      k.notAfter,
    ],
  );
}

/**
 * Inserts an issued certificate unless its key was revoked for keyCompromise (checked in the
 * same statement, so it costs no extra round trip). 'serial-taken' when the serial exists
 * (serials are never reused), 'compromised' when the key is barred.
 */
export type NewCert = Omit<CertRow, 'revokedAt' | 'reason'>;
export type InsertResult = 'ok' | 'serial-taken' | 'compromised';

/** SQLSTATE of the store's refusal to certify a key revoked for keyCompromise (005_cert_guard). */
export const KEY_COMPROMISED_SQLSTATE = 'AN001';

/**
 * The plain INSERT of one certificate, for a caller's combined statement: a barred key raises
 * KEY_COMPROMISED_SQLSTATE, a taken serial a unique violation (both abort the caller's writes).
 */
export function insertCertStatement(c: NewCert): Statement {
  return {
    text: `INSERT INTO certificates (serial, subject_id, fqdn, issuer_id, der, spki_sha256, not_before, not_after)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    params: [c.serial, c.subjectId, c.fqdn, c.issuerId, Buffer.from(c.der), c.spkiSha256, c.notBefore, c.notAfter],
  };
}

export async function insertCert(q: Queryable, c: NewCert): Promise<InsertResult> {
  const rows = await q.query(
    `INSERT INTO certificates (serial, subject_id, fqdn, issuer_id, der, spki_sha256, not_before, not_after)
     SELECT $1, $2, $3, $4, $5, $6, $7, $8
     WHERE NOT EXISTS (SELECT 1 FROM certificates WHERE spki_sha256 = $6 AND reason = 'keyCompromise')
     ON CONFLICT (serial) DO NOTHING RETURNING serial`,
    [c.serial, c.subjectId, c.fqdn, c.issuerId, Buffer.from(c.der), c.spkiSha256, c.notBefore, c.notAfter],
  );
  if (rows.length === 1) return 'ok';
  return (await isKeyCompromised(q, c.spkiSha256)) ? 'compromised' : 'serial-taken';
}

/** insertCert for many certificates in one statement (the same checks per row). */
export async function insertCerts(q: Queryable, cs: readonly NewCert[]): Promise<InsertResult[]> {
  const rows = await q.query<{ serial: string }>(
    `INSERT INTO certificates (serial, subject_id, fqdn, issuer_id, der, spki_sha256, not_before, not_after)
     SELECT v.serial, v.subject_id, v.fqdn, v.issuer_id, decode(v.der, 'base64'), v.spki, v.nb::timestamptz, v.na::timestamptz
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
          AS v(serial, subject_id, fqdn, issuer_id, der, spki, nb, na)
     WHERE NOT EXISTS (SELECT 1 FROM certificates c WHERE c.spki_sha256 = v.spki AND c.reason = 'keyCompromise')
     ON CONFLICT (serial) DO NOTHING RETURNING serial`,
    [
      cs.map((c) => c.serial),
      cs.map((c) => c.subjectId),
      cs.map((c) => c.fqdn),
      cs.map((c) => c.issuerId),
      cs.map((c) => Buffer.from(c.der.buffer, c.der.byteOffset, c.der.byteLength).toString('base64')),
      cs.map((c) => c.spkiSha256),
      cs.map((c) => c.notBefore.toISOString()),
      cs.map((c) => c.notAfter.toISOString()),
    ],
  );
  const ok = new Set(rows.map((r) => r.serial));
  const out: InsertResult[] = [];
  for (const c of cs)
    out.push(ok.delete(c.serial) ? 'ok' : (await isKeyCompromised(q, c.spkiSha256)) ? 'compromised' : 'serial-taken');
  return out;
}

const CERT_COLS = 'serial, subject_id, fqdn, issuer_id, der, spki_sha256, not_before, not_after, revoked_at, reason';

export async function certBySerial(q: Queryable, serial: string): Promise<CertRow | null> {
  const rows = await q.query<RawCert>(`SELECT ${CERT_COLS} FROM certificates WHERE serial = $1`, [serial]);
  return rows[0] ? certRow(rows[0]) : null;
}

export async function newestOfSubject(q: Queryable, subjectId: string): Promise<CertRow | null> {
  const rows = await q.query<RawCert>(
    `SELECT ${CERT_COLS} FROM certificates WHERE subject_id = $1 ORDER BY seq DESC LIMIT 1`,
    [subjectId],
  );
  return rows[0] ? certRow(rows[0]) : null;
}

export async function compromisedKeys(q: Queryable): Promise<string[]> {
  const rows = await q.query<{ spki_sha256: string }>(
    "SELECT DISTINCT spki_sha256 FROM certificates WHERE reason = 'keyCompromise'",
  );
  return rows.map((r) => r.spki_sha256);
}

export async function isKeyCompromised(q: Queryable, spkiSha256: string): Promise<boolean> {
  const rows = await q.query("SELECT 1 FROM certificates WHERE spki_sha256 = $1 AND reason = 'keyCompromise' LIMIT 1", [
    spkiSha256,
  ]);
  return rows.length > 0;
}

/** Revokes the subject's unrevoked certificates; returns their serials. */
export async function revokeSubject(
  q: Queryable,
  subjectId: string,
  at: Date,
  reason: RevocationReason,
): Promise<string[]> {
  const rows = await q.query<{ serial: string }>(
    `UPDATE certificates SET revoked_at = $2, reason = $3
     WHERE subject_id = $1 AND revoked_at IS NULL AND not_after > $2 RETURNING serial`,
    [subjectId, at, reason],
  );
  return rows.map((r) => r.serial).sort();
}

/** Revokes one certificate; false when it was already revoked. */
export async function revokeSerial(q: Queryable, serial: string, at: Date, reason: RevocationReason): Promise<boolean> {
  const rows = await q.query(
    'UPDATE certificates SET revoked_at = $2, reason = $3 WHERE serial = $1 AND revoked_at IS NULL RETURNING serial',
    [serial, at, reason],
  );
  return rows.length === 1;
}

/**
 * Bumps the revocation counter and stamps the just-revoked rows with its new value and their
 * DER CRL entry (one statement). The counter row stays locked until the caller commits, so a
 * reader that sees counter c also sees every row stamped <= c.
 */
export async function bumpRevocations(
  q: Queryable,
  serials: readonly string[],
  entriesHex: readonly string[],
): Promise<void> {
  await q.query(
    `WITH b AS (UPDATE ca_state SET revocations = revocations + 1 WHERE id = 1 RETURNING revocations)
     UPDATE certificates c SET revoked_epoch = (SELECT revocations FROM b), crl_entry = decode(v.e, 'hex')
     FROM unnest($1::text[], $2::text[]) AS v(s, e) WHERE c.serial = v.s`,
    [serials, entriesHex],
  );
}

/** Serials revoked after counter value `epoch`; null when there are more than `limit`. */
export async function revokedSince(q: Queryable, epoch: number, limit: number): Promise<string[] | null> {
  const rows = await q.query<{ serial: string }>('SELECT serial FROM certificates WHERE revoked_epoch > $1 LIMIT $2', [
    epoch,
    limit + 1,
  ]);
  return rows.length > limit ? null : rows.map((r) => r.serial);
}

export async function revocationEpoch(q: Queryable): Promise<number> {
  const rows = await q.query<{ revocations: string | number }>('SELECT revocations FROM ca_state WHERE id = 1');
  return Number(rows[0]?.revocations ?? 0);
}

export interface RevokedEntry {
  serial: string;
  revokedAt: Date;
  reason: RevocationReason;
}

/** Revoked, unexpired certificates of one issuer whose CRL entry has not been encoded yet. */
export async function revokedWithoutEntry(q: Queryable, issuerId: string, now: Date): Promise<RevokedEntry[]> {
  const rows = await q.query<{ serial: string; revoked_at: Date | string; reason: RevocationReason }>(
    `SELECT serial, revoked_at, reason FROM certificates
     WHERE issuer_id = $1 AND revoked_at IS NOT NULL AND not_after > $2 AND crl_entry IS NULL`,
    [issuerId, now],
  );
  return rows.map((r) => ({ serial: r.serial, revokedAt: date(r.revoked_at), reason: r.reason }));
}

/** Stores encoded CRL entries (hex, so the same SQL works on PGlite and pg). */
export async function saveCrlEntries(
  q: Queryable,
  serials: readonly string[],
  entriesHex: readonly string[],
): Promise<void> {
  await q.query(
    `UPDATE certificates c SET crl_entry = decode(v.e, 'hex')
     FROM unnest($1::text[], $2::text[]) AS v(s, e) WHERE c.serial = v.s AND c.revoked_at IS NOT NULL`,
    [serials, entriesHex],
  );
}

/**
 * The encoded entries of every revoked, unexpired certificate of one issuer, concatenated in
 * serial order by the database (one value instead of a row per entry). `missing` counts rows
 * whose entry is not encoded yet (revoked since the caller filled them in).
 */
export async function crlEntries(
  q: Queryable,
  issuerId: string,
  now: Date,
): Promise<{ count: number; missing: number; der: Uint8Array }> {
  // base64 text crosses the driver boundary several times faster than a large bytea.
  const rows = await q.query<{ n: string | number; m: string | number; entries: string | null }>(
    `SELECT count(*) AS n, count(*) - count(crl_entry) AS m,
            encode(string_agg(crl_entry, ''::bytea ORDER BY serial), 'base64') AS entries
     FROM certificates WHERE issuer_id = $1 AND revoked_at IS NOT NULL AND not_after > $2`,
    [issuerId, now],
  );
  const r = rows[0]!;
  return {
    count: Number(r.n),
    missing: Number(r.m),
    der: r.entries ? new Uint8Array(Buffer.from(r.entries, 'base64')) : new Uint8Array(),
  };
}

export async function nextCrlNumber(q: Queryable): Promise<number> {
  const rows = await q.query<{ n: string | number }>("SELECT nextval('ca_crl_number') AS n");
  return Number(rows[0]!.n);
}

/** Certificates still valid at `now`, counted by days left (for the near-expiry metric). */
export async function countExpiringBefore(q: Queryable, now: Date, before: Date): Promise<number> {
  const rows = await q.query<{ n: string | number }>(
    'SELECT count(*) AS n FROM certificates WHERE revoked_at IS NULL AND not_after > $1 AND not_after <= $2',
    [now, before],
  );
  return Number(rows[0]?.n ?? 0);
}

export interface StoredCrl {
  crlNumber: number;
  epoch: number;
  nextUpdate: Date;
  der: Uint8Array;
}

export async function saveCrl(q: Queryable, issuerId: string, c: StoredCrl & { thisUpdate: Date }): Promise<void> {
  await q.query(
    `INSERT INTO ca_crls (issuer_id, crl_number, epoch, this_update, next_update, der) VALUES ($1, $2, $3, $4, $5, decode($6, 'base64'))
     ON CONFLICT (issuer_id) DO UPDATE SET crl_number = EXCLUDED.crl_number, epoch = EXCLUDED.epoch,
       this_update = EXCLUDED.this_update, next_update = EXCLUDED.next_update, der = EXCLUDED.der
     WHERE ca_crls.crl_number < EXCLUDED.crl_number`,
    [
      issuerId,
      c.crlNumber,
      c.epoch,
      c.thisUpdate,
      c.nextUpdate,
      Buffer.from(c.der.buffer, c.der.byteOffset, c.der.byteLength).toString('base64'),
    ],
  );
}

export async function storedCrl(q: Queryable, issuerId: string): Promise<StoredCrl | null> {
  const rows = await q.query<{
    crl_number: string | number;
    epoch: string | number;
    next_update: Date | string;
    der: string;
  }>("SELECT crl_number, epoch, next_update, encode(der, 'base64') AS der FROM ca_crls WHERE issuer_id = $1", [
    issuerId,
  ]);
  const r = rows[0];
  return r
    ? {
        crlNumber: Number(r.crl_number),
        epoch: Number(r.epoch),
        nextUpdate: date(r.next_update),
        der: new Uint8Array(Buffer.from(r.der, 'base64')),
      }
    : null;
}

export async function saveOcsp(
  q: Queryable,
  serial: string,
  revoked: boolean,
  nextUpdate: Date,
  der: Uint8Array,
): Promise<void> {
  await q.query(
    `INSERT INTO ca_ocsp_responses (serial, revoked, next_update, der) VALUES ($1, $2, $3, $4)
     ON CONFLICT (serial) DO UPDATE SET revoked = EXCLUDED.revoked, next_update = EXCLUDED.next_update, der = EXCLUDED.der`,
    [serial, revoked, nextUpdate, Buffer.from(der)],
  );
}

export async function storedOcsp(
  q: Queryable,
  serial: string,
): Promise<{ revoked: boolean; nextUpdate: Date; der: Uint8Array } | null> {
  const rows = await q.query<{ revoked: boolean; next_update: Date | string; der: Uint8Array }>(
    'SELECT revoked, next_update, der FROM ca_ocsp_responses WHERE serial = $1',
    [serial],
  );
  const r = rows[0];
  return r ? { revoked: r.revoked, nextUpdate: date(r.next_update), der: bytes(r.der) } : null;
}

/** The store's view of what caches depend on: revocation count and newest issuing generation. */
export async function caVersion(q: Queryable): Promise<{ revocations: number; generation: number }> {
  const rows = await q.query<{ revocations: string | number; generation: string | number | null }>(
    `SELECT s.revocations, (SELECT max(generation) FROM ca_keys WHERE role = 'issuing') AS generation
     FROM ca_state s WHERE s.id = 1`,
  );
  return { revocations: Number(rows[0]?.revocations ?? 0), generation: Number(rows[0]?.generation ?? 0) };
}
