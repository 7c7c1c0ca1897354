import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Db } from '../../src/store/index.js';
import { CaErrors, CertificateAuthority, type IssuedCertificate } from '../../ca/index.js';
import { unsafeSignLeafForTest } from '../../ca/authority.js';
import { toPem } from '../../ca/x509.js';
import {
  ZONE,
  memoryCa,
  openssl,
  opensslCsr,
  opensslCsrForKey,
  pemToB64,
  splitPem,
  tempDir,
  write,
} from './helpers.js';

const FQDN = 'weather.agents.internal';
const URI = 'ans://v1.2.0.weather.agents.internal';
const tmp = tempDir();
let db: Db;
let ca: CertificateAuthority;
let clock = Date.now();
const now = () => new Date(clock);

beforeAll(async () => {
  ({ db, ca } = await memoryCa({ now, recheckMs: 0 }));
});
afterAll(async () => {
  await db.close();
  tmp.cleanup();
});

async function issue(spec: Parameters<typeof opensslCsr>[1] = 'P-256', subjectId = 'agent-1', fqdn = FQDN) {
  const k = opensslCsr(tmp.dir, spec, { cn: fqdn });
  const cert = await ca.issue({ subjectId, fqdn, uri: `ans://v1.2.0.${fqdn}`, csrPem: k.csr });
  return { ...k, cert };
}

function files(cert: IssuedCertificate, chainPem = cert.chainPem) {
  const parts = splitPem(chainPem);
  const n = Math.random().toString(36).slice(2);
  return {
    leaf: write(tmp.dir, `leaf-${n}.pem`, cert.pem),
    intermediates: write(tmp.dir, `int-${n}.pem`, parts.slice(0, -1).join('')),
    root: write(tmp.dir, `root-${n}.pem`, parts[parts.length - 1]!),
  };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'ok',
    (e: unknown) => (e as { code?: string }).code ?? String(e),
  );
}

describe('issuance', () => {
  it.each(['P-256', 'P-384', 'Ed25519', 'RSA2048'] as const)('a %s certificate passes openssl verify', async (spec) => {
    const { cert, keyFile } = await issue(spec);
    const f = files(cert);
    const v = openssl(['verify', '-CAfile', f.root, '-untrusted', f.intermediates, '-purpose', 'sslclient', f.leaf]);
    expect(v.out).toContain(': OK');
    expect(v.status).toBe(0);
    expect(cert.serial).toMatch(/^[0-9a-f]{32}$/);
    // TLSA 3 1 1: sha256 of the SubjectPublicKeyInfo, the same as openssl computes from the key.
    const spki = createPublicKey(readFileSync(keyFile, 'utf8')).export({ type: 'spki', format: 'der' });
    expect(cert.spkiSha256).toBe(createHash('sha256').update(spki).digest('hex'));
  });

  it('carries the profile: SAN dNSName + URI, EKU, KU, CA:FALSE, SKI/AKI, CRL DP, AIA OCSP, 30 days', async () => {
    const { cert } = await issue('RSA2048');
    const text = openssl(['x509', '-noout', '-text'], cert.pem).out;
    expect(text).toContain(`DNS:${FQDN}, URI:${URI}`);
    expect(text).toContain('TLS Web Server Authentication, TLS Web Client Authentication');
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature, Key Encipherment/);
    expect(text).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toContain('Subject Key Identifier');
    expect(text).toContain('Authority Key Identifier');
    expect(text).toContain('URI:http://127.0.0.1:8080/v1/ca/crl/issuing-1');
    expect(text).toContain('OCSP - URI:http://127.0.0.1:8080/v1/ca/ocsp');
    expect(text).toContain(`Subject: CN = ${FQDN}`);
    const days = (cert.notAfter.getTime() - clock) / 86_400_000;
    expect(days).toBeGreaterThan(29.99);
    expect(days).toBeLessThanOrEqual(30);
    const cur = await ca.current('agent-1');
    expect(cur?.serial).toBe(cert.serial);
    expect(cur?.status).toBe('good');
  });

  it('never reuses a serial (unique key) and gives each issuance a fresh one', async () => {
    const a = await issue();
    const b = await issue();
    expect(a.cert.serial).not.toBe(b.cert.serial);
    await expect(
      db.query(
        `INSERT INTO certificates (serial, subject_id, fqdn, issuer_id, der, spki_sha256, not_before, not_after)
         SELECT serial, subject_id, fqdn, issuer_id, der, spki_sha256, not_before, not_after FROM certificates WHERE serial = $1`,
        [a.cert.serial],
      ),
    ).rejects.toThrow();
  });

  it('rejects a URI outside the zone and an FQDN outside the zone', async () => {
    const { csr } = opensslCsr(tmp.dir, 'P-256', { cn: FQDN });
    expect(await codeOf(ca.issue({ subjectId: 'x', fqdn: FQDN, uri: 'ans://v1.evil.example.com', csrPem: csr }))).toBe(
      CaErrors.uriInvalid.code,
    );
    expect(await codeOf(ca.issue({ subjectId: 'x', fqdn: 'weather.example.com', uri: URI, csrPem: csr }))).toBe(
      CaErrors.nameOutsideZone.code,
    );
  });

  it('validity is configurable (1..397 days)', async () => {
    await expect(
      CertificateAuthority.open({
        db,
        zone: ZONE,
        publicUrl: 'http://x',
        passphrase: 'test passphrase',
        validityDays: 398,
      }),
    ).rejects.toMatchObject({
      code: CaErrors.badConfig.code,
    });
    const short = await CertificateAuthority.open({
      db,
      zone: ZONE,
      publicUrl: 'http://127.0.0.1:8080',
      passphrase: 'test passphrase',
      validityDays: 7,
    });
    const { csr } = opensslCsr(tmp.dir, 'P-256', { cn: FQDN });
    const c = await short.issue({ subjectId: 's', fqdn: FQDN, uri: URI, csrPem: csr });
    expect(Math.round((c.notAfter.getTime() - Date.now()) / 86_400_000)).toBe(7);
  });
});

describe('name constraint', () => {
  it('a certificate forced out of the zone fails openssl verify with a name-constraints error', async () => {
    const { key } = opensslCsr(tmp.dir, 'P-256', { cn: 'evil.example.com' });
    const spki = new Uint8Array(createPublicKey(key).export({ type: 'spki', format: 'der' }));
    const pem = unsafeSignLeafForTest(ca, 'evil.example.com', spki);
    const parts = splitPem(ca.chainPem());
    const root = write(tmp.dir, 'nc-root.pem', parts[parts.length - 1]!);
    const int = write(tmp.dir, 'nc-int.pem', parts[0]!);
    const leaf = write(tmp.dir, 'nc-leaf.pem', pem);
    const v = openssl(['verify', '-CAfile', root, '-untrusted', int, leaf]);
    expect(v.status).not.toBe(0);
    expect(v.out).toMatch(/name constraint|permitted subtree violation/i);
    // The same forced path for a name inside the zone verifies: the failure is the constraint.
    const okPem = unsafeSignLeafForTest(ca, 'inside.agents.internal', spki);
    expect(openssl(['verify', '-CAfile', root, '-untrusted', int, write(tmp.dir, 'nc-ok.pem', okPem)]).status).toBe(0);
  });
});

describe('revocation', () => {
  it('a revoked certificate is on the CRL and openssl verify -crl_check says revoked', async () => {
    const { cert } = await issue('P-256', 'agent-rev');
    const f = files(cert);
    const crl1 = await ca.crl();
    const crlFile1 = write(tmp.dir, 'crl1.pem', toPem('X509 CRL', crl1));
    const before = openssl([
      'verify',
      '-crl_check',
      '-CAfile',
      f.root,
      '-untrusted',
      f.intermediates,
      '-CRLfile',
      crlFile1,
      f.leaf,
    ]);
    expect(before.out).toContain(': OK');

    const serials = await ca.revokeSubject('agent-rev', 'keyCompromise');
    expect(serials).toEqual([cert.serial]);
    const crl2 = await ca.crl();
    const crlFile2 = write(tmp.dir, 'crl2.pem', toPem('X509 CRL', crl2));
    const after = openssl([
      'verify',
      '-crl_check',
      '-CAfile',
      f.root,
      '-untrusted',
      f.intermediates,
      '-CRLfile',
      crlFile2,
      f.leaf,
    ]);
    expect(after.status).not.toBe(0);
    expect(after.out).toMatch(/certificate revoked/);

    const text = openssl(['crl', '-noout', '-text', '-in', crlFile2]).out;
    expect(text).toContain(cert.serial.toUpperCase());
    expect(text).toContain('Key Compromise');
    const n1 = Number(/CRL Number:\s*\n?\s*(\d+)/.exec(openssl(['crl', '-noout', '-text', '-in', crlFile1]).out)![1]);
    const n2 = Number(/CRL Number:\s*\n?\s*(\d+)/.exec(text)![1]);
    expect(n2).toBeGreaterThan(n1);
    expect(openssl(['crl', '-noout', '-in', crlFile2, '-CAfile', f.intermediates]).out).toContain('verify OK');

    const cur = await ca.current('agent-rev');
    expect(cur).toMatchObject({ serial: cert.serial, status: 'revoked', reason: 'keyCompromise' });
    expect(cur!.revokedAt).toBeInstanceOf(Date);
    const changes = await db.query<{ entity: string; entity_id: string }>(
      "SELECT entity, entity_id FROM changes WHERE entity = 'certificate'",
    );
    expect(changes.map((c) => c.entity_id)).toContain(cert.serial);
  });

  it('a key revoked for keyCompromise can never be certified again', async () => {
    const { cert, keyFile } = await issue('P-256', 'agent-kc');
    await ca.revokeSerial(cert.serial, 'keyCompromise');
    const again = opensslCsrForKey(tmp.dir, keyFile, FQDN);
    expect(await codeOf(ca.checkCsr(again, FQDN))).toBe(CaErrors.keyCompromised.code);
    expect(await codeOf(ca.issue({ subjectId: 'other', fqdn: FQDN, uri: URI, csrPem: again }))).toBe(
      CaErrors.keyCompromised.code,
    );
  });

  it('revokeSerial: already revoked -> 409, unknown -> 404, bad serial/reason -> 400', async () => {
    const { cert } = await issue('P-256', 'agent-rs');
    await ca.revokeSerial(cert.serial, 'superseded');
    expect(await codeOf(ca.revokeSerial(cert.serial, 'superseded'))).toBe(CaErrors.alreadyRevoked.code);
    expect(await codeOf(ca.revokeSerial('ab'.repeat(16), 'superseded'))).toBe(CaErrors.unknownSerial.code);
    expect(await codeOf(ca.revokeSerial('not-hex', 'superseded'))).toBe(CaErrors.badSerial.code);
    expect(await codeOf(ca.revokeSerial(cert.serial, 'bogus' as 'superseded'))).toBe(CaErrors.badReason.code);
    expect(await ca.revokeSubject('nobody', 'superseded')).toEqual([]);
  });

  it('revocation inside the caller transaction rolls back with it', async () => {
    const { cert } = await issue('P-256', 'agent-tx');
    await expect(
      db.transaction(async (tx) => {
        await ca.revokeSubject('agent-tx', 'superseded', tx);
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect((await ca.current('agent-tx'))?.status).toBe('good');
    expect(cert.serial).toMatch(/^[0-9a-f]+$/);
  });

  it('status turns expired when time passes', async () => {
    const { cert } = await issue('P-256', 'agent-exp');
    clock += 31 * 86_400_000;
    try {
      expect((await ca.current('agent-exp'))?.status).toBe('expired');
      expect(cert.notAfter.getTime()).toBeLessThan(clock);
    } finally {
      clock -= 31 * 86_400_000;
    }
  });
});

describe('verifyClient', () => {
  it('verifies x5c against our chain and reports status', async () => {
    const { cert } = await issue('P-384', 'agent-vc');
    const issuing = splitPem(cert.chainPem)[0]!;
    const x5c = [pemToB64(cert.pem), pemToB64(issuing)];
    const v = await ca.verifyClient(x5c);
    expect(v).toMatchObject({ serial: cert.serial, subjectId: 'agent-vc', fqdn: FQDN, status: 'good', alg: 'ES384' });
    expect(v.publicKey.asymmetricKeyType).toBe('ec');
    await ca.revokeSubject('agent-vc', 'privilegeWithdrawn');
    expect((await ca.verifyClient(x5c)).status).toBe('revoked');
  });

  it('throws CA_ERR_CHAIN_INVALID for garbage, a foreign issuer, or a forged leaf', async () => {
    const { cert } = await issue('Ed25519', 'agent-vc2');
    const issuing = pemToB64(splitPem(cert.chainPem)[0]!);
    expect(await codeOf(ca.verifyClient(['!!!', issuing]))).toBe(CaErrors.chainInvalid.code);
    expect(await codeOf(ca.verifyClient([]))).toBe(CaErrors.chainInvalid.code);
    expect(await codeOf(ca.verifyClient([pemToB64(cert.pem), pemToB64(ca.rootPem())]))).toBe(
      CaErrors.chainInvalid.code,
    );
    // A self-signed certificate from openssl with the same subject.
    const key = opensslCsr(tmp.dir, 'P-256', { cn: FQDN }).keyFile;
    const selfSigned = openssl(['req', '-new', '-x509', '-key', key, '-subj', `/CN=${FQDN}`, '-days', '1']).out;
    expect(await codeOf(ca.verifyClient([pemToB64(splitPem(selfSigned)[0]!), issuing]))).toBe(
      CaErrors.chainInvalid.code,
    );
    expect((await ca.verifyClient([pemToB64(cert.pem), issuing])).alg).toBe('EdDSA');
  });
});

describe('keys at rest', () => {
  it('stores every CA key as encrypted PKCS#8 that does not import without the passphrase', async () => {
    const rows = await db.query<{ id: string; key_pem: string }>('SELECT id, key_pem FROM ca_keys');
    expect(rows.length).toBeGreaterThanOrEqual(2);
    for (const r of rows) {
      expect(r.key_pem.startsWith('-----BEGIN ENCRYPTED PRIVATE KEY-----')).toBe(true);
      expect(() => createPrivateKey({ key: r.key_pem, format: 'pem' })).toThrow();
      expect(() => createPrivateKey({ key: r.key_pem, format: 'pem', passphrase: 'wrong' })).toThrow();
      expect(createPrivateKey({ key: r.key_pem, format: 'pem', passphrase: 'test passphrase' }).type).toBe('private');
      expect(openssl(['pkey', '-in', '-', '-passin', 'pass:wrong', '-noout'], r.key_pem).status).not.toBe(0);
    }
  });

  it('a wrong passphrase is a clear error at open', async () => {
    await expect(
      CertificateAuthority.open({ db, zone: ZONE, publicUrl: 'http://x', passphrase: 'nope' }),
    ).rejects.toMatchObject({
      code: CaErrors.passphraseWrong.code,
    });
  });

  it('without a passphrase: refuses to issue (503) but serves the chain, the CRL and OCSP', async () => {
    const { cert } = await issue('P-256', 'agent-np');
    await ca.crl(); // a key-holding process built (and stored) the current CRL
    const keyless = await CertificateAuthority.open({
      db,
      zone: ZONE,
      publicUrl: 'http://127.0.0.1:8080',
      passphrase: undefined,
      now,
    });
    expect(keyless.canIssue).toBe(false);
    expect(ca.canIssue).toBe(true);
    const { csr } = opensslCsr(tmp.dir, 'P-256', { cn: FQDN });
    const err = await keyless.issue({ subjectId: 'x', fqdn: FQDN, uri: URI, csrPem: csr }).then(
      () => ({ code: 'issued', statusCode: 200, message: '' }),
      (e: unknown) => e as { code: string; statusCode: number; message: string },
    );
    expect(err).toMatchObject({ code: CaErrors.noPassphrase.code, statusCode: 503 });
    expect(err.message).toMatch(/passphrase/);
    expect(keyless.chainPem()).toBe(ca.chainPem());
    expect(Buffer.from(await keyless.crl()).equals(Buffer.from(await ca.crl()))).toBe(true);
    expect(cert.serial).toBeTruthy();
  });
});

describe('rotation', () => {
  it('a new intermediate issues; the old leaf still verifies against the served chain and its own CRL', async () => {
    const old = await issue('P-256', 'agent-rot-old');
    await ca.rotate();
    const fresh = await issue('P-256', 'agent-rot-new');
    const chain = ca.chainPem();
    expect(splitPem(chain)).toHaveLength(3);
    expect(openssl(['x509', '-noout', '-issuer'], fresh.cert.pem).out).toContain('ANS Issuing CA 2');
    for (const c of [old.cert, fresh.cert]) {
      const f = files(c, chain);
      expect(openssl(['verify', '-CAfile', f.root, '-untrusted', f.intermediates, f.leaf]).out).toContain(': OK');
    }
    // The old issuer's CRL is still served and signed by the old issuer.
    await ca.revokeSubject('agent-rot-old', 'superseded');
    const oldCrl = write(tmp.dir, 'old-crl.pem', toPem('X509 CRL', await ca.crl('issuing-1')));
    const f = files(old.cert, chain);
    const v = openssl([
      'verify',
      '-crl_check',
      '-CAfile',
      f.root,
      '-untrusted',
      f.intermediates,
      '-CRLfile',
      oldCrl,
      f.leaf,
    ]);
    expect(v.out).toMatch(/certificate revoked/);
    expect(await codeOf(ca.crl('issuing-99'))).toBe(CaErrors.unknownIssuer.code);
  });
});
