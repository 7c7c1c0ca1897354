import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { Db } from '../../src/store/index.js';
import { CaErrors, type CertificateAuthority } from '../../ca/index.js';
import { fromPemAll, toPem } from '../../ca/x509.js';
import { memoryCa, opensslCsr, tempDir } from './helpers.js';

const FQDN = 'weather.agents.internal';
let ca: CertificateAuthority;
let db: Db;
const tmp = tempDir();

beforeAll(async () => {
  ({ ca, db } = await memoryCa());
});
afterAll(async () => {
  await db.close();
  tmp.cleanup();
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (e) {
    return (e as { code?: string }).code ?? `non-CA error: ${String(e)}`;
  }
}

function tamperSignature(pem: string): string {
  const der = fromPemAll(pem, ['CERTIFICATE REQUEST'])[0]!;
  const bad = der.slice();
  bad[bad.length - 1] ^= 0x01; // the last signature byte
  return toPem('CERTIFICATE REQUEST', bad);
}

describe('CSR policy: allowed keys and names', () => {
  it.each(['P-256', 'P-384', 'Ed25519', 'RSA2048'] as const)('accepts %s', async (spec) => {
    const { csr } = opensslCsr(tmp.dir, spec, { cn: FQDN });
    expect(await codeOf(ca.checkCsr(csr, FQDN))).toBe('accepted');
  });

  it('accepts a CSR with no CN and exactly the FQDN as SAN; names compare case-insensitively', async () => {
    const a = opensslCsr(tmp.dir, 'P-256', { addext: [`subjectAltName=DNS:${FQDN}`] });
    expect(await codeOf(ca.checkCsr(a.csr, FQDN))).toBe('accepted');
    const b = opensslCsr(tmp.dir, 'P-256', { cn: 'Weather.Agents.Internal.' });
    expect(await codeOf(ca.checkCsr(b.csr, 'WEATHER.agents.internal.'))).toBe('accepted');
  });

  it('tolerates known non-critical requested extensions (they are not copied)', async () => {
    const { csr } = opensslCsr(tmp.dir, 'P-256', {
      cn: FQDN,
      addext: ['keyUsage=critical,digitalSignature', 'basicConstraints=critical,CA:TRUE'],
    });
    expect(await codeOf(ca.checkCsr(csr, FQDN))).toBe('accepted');
  });
});

describe('CSR policy: bad input, one CA_ERR_ code each', () => {
  const cases: [string, () => { csr: string; fqdn?: string }, string][] = [
    [
      'a wrong signature',
      () => ({ csr: tamperSignature(opensslCsr(tmp.dir, 'P-256', { cn: FQDN }).csr) }),
      CaErrors.csrSignature.code,
    ],
    ['an RSA 1024 key', () => opensslCsr(tmp.dir, 'RSA1024', { cn: FQDN }), CaErrors.keyNotAllowed.code],
    ['a secp256k1 key', () => opensslCsr(tmp.dir, 'secp256k1', { cn: FQDN }), CaErrors.keyNotAllowed.code],
    [
      'extra SANs',
      () => opensslCsr(tmp.dir, 'P-256', { cn: FQDN, addext: [`subjectAltName=DNS:${FQDN},DNS:evil.example.com`] }),
      CaErrors.csrNames.code,
    ],
    [
      'an IP SAN',
      () => opensslCsr(tmp.dir, 'P-256', { cn: FQDN, addext: ['subjectAltName=IP:10.0.0.1'] }),
      CaErrors.csrNames.code,
    ],
    ['a CN that differs', () => opensslCsr(tmp.dir, 'P-256', { cn: 'other.agents.internal' }), CaErrors.csrNames.code],
    [
      'a critical unknown extension request',
      () => opensslCsr(tmp.dir, 'P-256', { cn: FQDN, addext: ['1.2.3.4.5=critical,ASN1:NULL'] }),
      CaErrors.csrCriticalExtension.code,
    ],
    [
      'garbage DER',
      () => ({ csr: toPem('CERTIFICATE REQUEST', new Uint8Array(randomBytes(300))) }),
      CaErrors.csrMalformed.code,
    ],
    [
      'DER with trailing bytes',
      () => {
        const der = fromPemAll(opensslCsr(tmp.dir, 'P-256', { cn: FQDN }).csr, ['CERTIFICATE REQUEST'])[0]!;
        return { csr: toPem('CERTIFICATE REQUEST', new Uint8Array([...der, 0, 0])) };
      },
      CaErrors.csrMalformed.code,
    ],
    [
      'a 1 MB PEM',
      () => ({ csr: toPem('CERTIFICATE REQUEST', new Uint8Array(768 * 1024)) }),
      CaErrors.csrTooLarge.code,
    ],
    ['text that is not PEM', () => ({ csr: 'hello, I am a CSR' }), CaErrors.csrNotPem.code],
    ['a certificate instead of a CSR', () => ({ csr: ca.rootPem() }), CaErrors.csrNotPem.code],
    [
      'a name outside the zone',
      () => ({ ...opensslCsr(tmp.dir, 'P-256', { cn: 'weather.example.com' }), fqdn: 'weather.example.com' }),
      CaErrors.nameOutsideZone.code,
    ],
  ];
  it.each(cases)('rejects %s', async (_name, make, code) => {
    const { csr, fqdn } = make();
    const err = await ca.checkCsr(csr, fqdn ?? FQDN).then(
      () => undefined,
      (e: unknown) => e as { code: string; statusCode: number; message: string },
    );
    expect(err?.code).toBe(code);
    expect(err!.statusCode).toBeGreaterThanOrEqual(400);
    expect(err!.statusCode).toBeLessThan(500);
    expect(err!.message.length).toBeGreaterThan(10);
  });
});
