import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { Db } from '../../src/store/index.js';
import { CertificateAuthority, caRoutes, type IssuedCertificate } from '../../ca/index.js';
import { ZONE, memoryCa, openssl, opensslAsync, opensslCsr, splitPem, tempDir, write } from './helpers.js';

const FQDN = 'weather.agents.internal';
const tmp = tempDir();
let db: Db;
let ca: CertificateAuthority;
let app: FastifyInstance;
let base: string;
let cert: IssuedCertificate;
const f = { root: '', int: '', leaf: '' };

beforeAll(async () => {
  ({ db, ca } = await memoryCa({ recheckMs: 100 }));
  app = Fastify();
  await app.register(caRoutes(ca));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const { csr } = opensslCsr(tmp.dir, 'P-256', { cn: FQDN });
  cert = await ca.issue({ subjectId: 'agent-1', fqdn: FQDN, uri: `ans://v1.0.0.${FQDN}`, csrPem: csr });
  const parts = splitPem(cert.chainPem);
  f.int = write(tmp.dir, 'int.pem', parts[0]!);
  f.root = write(tmp.dir, 'root.pem', parts[1]!);
  f.leaf = write(tmp.dir, 'leaf.pem', cert.pem);
});
afterAll(async () => {
  await app.close();
  await db.close();
  tmp.cleanup();
});

function ocspCli(extra: string[] = []) {
  return opensslAsync([
    'ocsp',
    '-issuer',
    f.int,
    '-cert',
    f.leaf,
    '-url',
    `${base}/v1/ca/ocsp`,
    '-CAfile',
    f.root,
    ...extra,
  ]);
}

describe('GET /v1/ca/certificate and /v1/ca/crl', () => {
  it('serves the PEM chain (issuing CA first, root last) that openssl verify accepts', async () => {
    const r = await fetch(`${base}/v1/ca/certificate`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('application/pem-certificate-chain');
    const chain = await r.text();
    expect(chain).toBe(ca.chainPem());
    expect(openssl(['verify', '-CAfile', write(tmp.dir, 'served.pem', chain), f.leaf]).out).toContain(': OK');
  });

  it('serves a DER CRL that verifies with the issuing CA; per-issuer path too; unknown issuer 404', async () => {
    for (const path of ['/v1/ca/crl', '/v1/ca/crl/issuing-1']) {
      const r = await fetch(`${base}${path}`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('application/pkix-crl');
      const file = write(tmp.dir, 'c.der', new Uint8Array(await r.arrayBuffer()));
      expect(openssl(['crl', '-inform', 'DER', '-in', file, '-noout', '-CAfile', f.int]).out).toContain('verify OK');
    }
    expect((await fetch(`${base}/v1/ca/crl/issuing-9`)).status).toBe(404);
    expect((await fetch(`${base}/v1/ca/crl/..%2Fetc`)).status).toBe(400);
  });
});

describe('OCSP through openssl ocsp', () => {
  it('says good, then revoked within a second of the revocation', async () => {
    const good = await ocspCli();
    expect(good.out).toContain('Response verify OK');
    expect(good.out).toMatch(/leaf\.pem: good/);
    await ca.revokeSubject('agent-1', 'keyCompromise');
    const revoked = await ocspCli();
    expect(revoked.out).toContain('Response verify OK');
    expect(revoked.out).toMatch(/leaf\.pem: revoked/);
    expect(revoked.out).toMatch(/Reason: keyCompromise/);
  });

  it('a revocation by another process (same store, no invalidate call) shows within a second', async () => {
    const { csr } = opensslCsr(tmp.dir, 'P-256', { cn: FQDN });
    const c2 = await ca.issue({ subjectId: 'agent-2', fqdn: FQDN, uri: `ans://v1.0.0.${FQDN}`, csrPem: csr });
    const leaf2 = write(tmp.dir, 'leaf2.pem', c2.pem);
    const args = ['ocsp', '-issuer', f.int, '-cert', leaf2, '-url', `${base}/v1/ca/ocsp`, '-CAfile', f.root];
    expect((await opensslAsync(args)).out).toMatch(/leaf2\.pem: good/);
    const other = await CertificateAuthority.open({ db, zone: ZONE, publicUrl: base, passphrase: 'test passphrase' });
    await other.revokeSerial(c2.serial, 'superseded');
    await new Promise((r) => setTimeout(r, 300));
    expect((await opensslAsync(args)).out).toMatch(/leaf2\.pem: revoked/);
    const crl = write(tmp.dir, 'crl-other.der', new Uint8Array(await (await fetch(`${base}/v1/ca/crl`)).arrayBuffer()));
    expect(openssl(['crl', '-inform', 'DER', '-in', crl, '-noout', '-text']).out).toContain(c2.serial.toUpperCase());
  });

  it('answers GET with the base64 request in the path', async () => {
    const reqFile = `${tmp.dir}/req.der`;
    openssl(['ocsp', '-issuer', f.int, '-cert', f.leaf, '-no_nonce', '-reqout', reqFile]);
    const { readFileSync } = await import('node:fs');
    const b64 = readFileSync(reqFile).toString('base64');
    const r = await fetch(`${base}/v1/ca/ocsp/${encodeURIComponent(b64)}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/ocsp-response');
    const respFile = write(tmp.dir, 'resp.der', new Uint8Array(await r.arrayBuffer()));
    const out = openssl(['ocsp', '-respin', respFile, '-issuer', f.int, '-cert', f.leaf, '-CAfile', f.root]).out;
    expect(out).toContain('Response verify OK');
    expect(out).toMatch(/revoked/);
  });

  it('garbage -> malformedRequest, an unknown issuer -> unauthorized, never a 5xx', async () => {
    const statusOf = (der: ArrayBuffer) => {
      const resp = new pkijs.OCSPResponse({ schema: asn1js.fromBER(der).result });
      return resp.responseStatus.valueBlock.valueDec;
    };
    const post = (body: Uint8Array | string, type = 'application/ocsp-request') =>
      fetch(`${base}/v1/ca/ocsp`, { method: 'POST', headers: { 'content-type': type }, body });
    const garbage = await post(new Uint8Array([1, 2, 3, 4, 5]));
    expect(garbage.status).toBe(200);
    expect(statusOf(await garbage.arrayBuffer())).toBe(1);
    const empty = await post(new Uint8Array());
    expect(empty.status).toBeLessThan(500);
    const badGet = await fetch(`${base}/v1/ca/ocsp/%%%not-base64`);
    expect(badGet.status).toBeLessThan(500);
    expect(statusOf(await (await fetch(`${base}/v1/ca/ocsp/AAAA`)).arrayBuffer())).toBe(1);
    // A request about a certificate of some other CA (its own self-signed issuer).
    const key = opensslCsr(tmp.dir, 'P-256', { cn: 'x.example.com' }).keyFile;
    const other = write(
      tmp.dir,
      'other.pem',
      openssl(['req', '-new', '-x509', '-key', key, '-subj', '/CN=x.example.com', '-days', '1']).out,
    );
    const reqFile = `${tmp.dir}/unknown.der`;
    openssl(['ocsp', '-issuer', other, '-cert', other, '-reqout', reqFile]);
    const { readFileSync } = await import('node:fs');
    const unknown = await post(new Uint8Array(readFileSync(reqFile)));
    expect(statusOf(await unknown.arrayBuffer())).toBe(6);
    // Oversized bodies are refused before parsing; a body of another type is malformed.
    expect((await post(new Uint8Array(64 * 1024))).status).toBe(413);
    const text = await post('hello', 'text/plain');
    expect(text.status).toBe(200);
    expect(statusOf(await text.arrayBuffer())).toBe(1);
  });
});
