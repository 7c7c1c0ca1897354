/**
 * The CA's fast paths (pre-encoded DER parts joined under computed headers) against the pkijs
 * object builders they replaced, byte for byte, and against openssl.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { Db } from '../../src/store/index.js';
import { CertificateAuthority } from '../../ca/index.js';
import { leafTbs } from '../../ca/authority.js';
import { assembleCrl, encodeEntry } from '../../ca/crl.js';
import { buildOcspResponse, parseOcspRequest, type CertState } from '../../ca/ocsp.js';
import { parseCsr } from '../../ca/policy.js';
import { REASON_CODE, type RevocationReason } from '../../ca/types.js';
import {
  OID,
  cnName,
  ext,
  fromPemAll,
  keyIdentifier,
  keyUsage,
  parseDer,
  randomSerial,
  serialToInteger,
  verifyBytes,
  wholeSeconds,
  x509Time,
} from '../../ca/x509.js';
import { memoryCa, openssl, opensslCsr, opensslCsrForKey, splitPem, tempDir, write } from './helpers.js';

const tmp = tempDir();
let db: Db;
let ca: CertificateAuthority;

beforeAll(async () => {
  ({ db, ca } = await memoryCa({ recheckMs: 0 }));
});
afterAll(async () => {
  await db.close();
  tmp.cleanup();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const internals = (): any => (ca as any).signingIssuer();

const tbsOf = (der: Uint8Array): Uint8Array => {
  const seq = parseDer(der) as asn1js.Sequence;
  return new Uint8Array(seq.valueBlock.value[0]!.valueBeforeDecodeView);
};

/** The leaf TBS as the original pkijs builder made it. */
function pkijsLeafTbs(
  issuer: ReturnType<typeof internals>,
  p: { serial: string; spkiDer: Uint8Array; fqdn: string; uri: string; notBefore: Date; notAfter: Date; rsa: boolean },
): Uint8Array {
  const spki = new pkijs.PublicKeyInfo({ schema: parseDer(p.spkiDer) });
  const withCn = p.fqdn.length <= 64;
  const altNames = [
    new pkijs.GeneralName({ type: 2, value: p.fqdn }),
    new pkijs.GeneralName({ type: 6, value: p.uri }),
  ];
  const cert = new pkijs.Certificate({
    version: 2,
    serialNumber: serialToInteger(p.serial),
    issuer: issuer.cert.subject,
    subject: withCn ? cnName(p.fqdn) : new pkijs.RelativeDistinguishedNames(),
    notBefore: x509Time(p.notBefore),
    notAfter: x509Time(p.notAfter),
    subjectPublicKeyInfo: spki,
    extensions: [
      ext(OID.basicConstraints, true, new pkijs.BasicConstraints({ cA: false })),
      ext(OID.keyUsage, true, keyUsage(p.rsa ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature'])),
      ext(OID.extKeyUsage, false, new pkijs.ExtKeyUsage({ keyPurposes: [OID.serverAuth, OID.clientAuth] })),
      ext(OID.subjectKeyIdentifier, false, new asn1js.OctetString({ valueHex: keyIdentifier(spki).slice().buffer })),
      issuer.leafExts.aki,
      ext(OID.subjectAltName, !withCn, new pkijs.AltName({ altNames })),
      issuer.leafExts.crlDp,
      issuer.leafExts.aia,
    ],
  });
  cert.signature = issuer.signer.algorithm;
  return new Uint8Array(cert.encodeTBS().toBER(false));
}

describe('leaf TBS', () => {
  const long = `${'x'.repeat(60)}.agents.internal`;
  it.each([
    ['P-256', 'weather.agents.internal'],
    ['P-384', 'weather.agents.internal'],
    ['Ed25519', 'weather.agents.internal'],
    ['RSA2048', 'weather.agents.internal'],
    ['P-256', long],
  ] as const)('%s %s: byte-identical to the pkijs builder', (spec, fqdn) => {
    const parsed = parseCsr(opensslCsr(tmp.dir, spec, { cn: fqdn.length <= 64 ? fqdn : undefined }).csr);
    const p = {
      serial: randomSerial(),
      spkiDer: parsed.spkiDer,
      keyBits: parsed.keyBits,
      fqdn,
      uri: `ans://v1.0.0.${fqdn}`,
      notBefore: wholeSeconds(new Date()),
      notAfter: wholeSeconds(new Date(Date.now() + 30 * 86_400_000)),
      rsa: spec === 'RSA2048',
    };
    const issuer = internals();
    expect(Buffer.from(leafTbs(issuer, p)).equals(Buffer.from(pkijsLeafTbs(issuer, p)))).toBe(true);
  });

  it('the CSR key is carried exactly as openssl encoded it (canonical SPKI)', () => {
    for (const spec of ['P-256', 'P-384', 'Ed25519', 'RSA2048'] as const) {
      const csr = opensslCsr(tmp.dir, spec, { cn: 'a.agents.internal' }).csr;
      const req = new pkijs.CertificationRequest({ schema: parseDer(fromPemAll(csr, ['CERTIFICATE REQUEST'])[0]!) });
      const want = new Uint8Array(req.subjectPublicKeyInfo.toSchema().toBER(false));
      expect(Buffer.from(parseCsr(csr).spkiDer).equals(Buffer.from(want))).toBe(true);
    }
  });
});

describe('group insert', () => {
  it('concurrent issuances share statements; a compromised key in the group is still refused', async () => {
    const bad = opensslCsr(tmp.dir, 'P-256', { cn: 'bad.agents.internal' });
    const first = await ca.issue({
      subjectId: 'bad',
      fqdn: 'bad.agents.internal',
      uri: 'ans://v1.bad.agents.internal',
      csrPem: bad.csr,
    });
    await ca.revokeSerial(first.serial, 'keyCompromise');
    const again = opensslCsrForKey(tmp.dir, bad.keyFile, 'bad.agents.internal');
    const csrs = Array.from(
      { length: 24 },
      (_, i) => opensslCsr(tmp.dir, 'P-256', { cn: `g${i}.agents.internal` }).csr,
    );
    const results = await Promise.allSettled([
      ...csrs.map((csrPem, i) =>
        ca.issue({ subjectId: `g${i}`, fqdn: `g${i}.agents.internal`, uri: `ans://v1.g${i}.agents.internal`, csrPem }),
      ),
      ca.issue({ subjectId: 'bad', fqdn: 'bad.agents.internal', uri: 'ans://v1.bad.agents.internal', csrPem: again }),
    ]);
    const ok = results.slice(0, 24).map((r) => (r.status === 'fulfilled' ? r.value.serial : 'failed'));
    expect(new Set(ok).size).toBe(24);
    expect(ok).not.toContain('failed');
    const last = results[24]!;
    expect(last.status === 'rejected' && (last.reason as { code: string }).code).toBe('CA_ERR_KEY_COMPROMISED');
    const rows = await db.query<{ n: string | number }>(
      'SELECT count(*) AS n FROM certificates WHERE serial = ANY($1::text[])',
      [ok],
    );
    expect(Number(rows[0]!.n)).toBe(24);
    for (let i = 0; i < 24; i++) expect((await ca.current(`g${i}`))?.serial).toBe(ok[i]);
  });
});

async function ocspRequest(certPem: string, chainPem: string): Promise<Uint8Array> {
  const leaf = new pkijs.Certificate({ schema: parseDer(fromPemAll(certPem, ['CERTIFICATE'])[0]!) });
  const issuerCert = new pkijs.Certificate({ schema: parseDer(fromPemAll(chainPem, ['CERTIFICATE'])[0]!) });
  const req = new pkijs.OCSPRequest();
  await req.createForCertificate(leaf, { hashAlgorithm: 'SHA-1', issuerCertificate: issuerCert });
  return new Uint8Array(req.toSchema(true).toBER(false));
}

function ocspCertStatus(der: Uint8Array): number {
  const resp = pkijs.OCSPResponse.fromBER(der.slice());
  const basic = pkijs.BasicOCSPResponse.fromBER(resp.responseBytes!.response.valueBlock.valueHexView.slice());
  return (basic.tbsResponseData.responses[0]!.certStatus as asn1js.BaseBlock).idBlock.tagNumber;
}

describe('targeted invalidation', () => {
  it("a revocation by another process flips that certificate's pre-produced OCSP answer and keeps the others cached", async () => {
    const other = await CertificateAuthority.open({
      db,
      zone: 'agents.internal.',
      publicUrl: 'http://127.0.0.1:8080',
      passphrase: 'test passphrase',
      recheckMs: 0,
    });
    const a = opensslCsr(tmp.dir, 'P-256', { cn: 'ti-a.agents.internal' });
    const b = opensslCsr(tmp.dir, 'P-256', { cn: 'ti-b.agents.internal' });
    const ca1 = await ca.issue({
      subjectId: 'ti-a',
      fqdn: 'ti-a.agents.internal',
      uri: 'ans://v1.ti-a.agents.internal',
      csrPem: a.csr,
    });
    const cb = await ca.issue({
      subjectId: 'ti-b',
      fqdn: 'ti-b.agents.internal',
      uri: 'ans://v1.ti-b.agents.internal',
      csrPem: b.csr,
    });
    const ra = await ocspRequest(ca1.pem, ca1.chainPem);
    const rb = await ocspRequest(cb.pem, cb.chainPem);
    expect(ocspCertStatus(await ca.ocsp(ra))).toBe(0);
    const cachedB = await ca.ocsp(rb);
    expect(ocspCertStatus(cachedB)).toBe(0);
    await other.revokeSerial(ca1.serial, 'keyCompromise');
    expect(ocspCertStatus(await ca.ocsp(ra))).toBe(1);
    // b's pre-produced answer survived the revocation of a (the same bytes come back).
    expect(await ca.ocsp(rb)).toBe(cachedB);
  });
});

describe('OCSP response', () => {
  it('tbsResponseData is byte-identical to the pkijs builder, with and without nonce, good and revoked', async () => {
    const k = opensslCsr(tmp.dir, 'P-256', { cn: 'ocsp.agents.internal' });
    const cert = await ca.issue({
      subjectId: 'ocsp-1',
      fqdn: 'ocsp.agents.internal',
      uri: 'ans://v1.ocsp.agents.internal',
      csrPem: k.csr,
    });
    const leaf = new pkijs.Certificate({ schema: parseDer(fromPemAll(cert.pem, ['CERTIFICATE'])[0]!) });
    const issuerCert = new pkijs.Certificate({ schema: parseDer(fromPemAll(cert.chainPem, ['CERTIFICATE'])[0]!) });
    const issuer = internals();
    const states: CertState[] = [
      { state: 'good' },
      { state: 'revoked', revokedAt: new Date(), reason: 'keyCompromise' },
      { state: 'revoked', revokedAt: new Date(), reason: 'unspecified' },
      { state: 'unknown' },
    ];
    for (const withNonce of [false, true]) {
      const req = new pkijs.OCSPRequest();
      await req.createForCertificate(leaf, { hashAlgorithm: 'SHA-1', issuerCertificate: issuerCert });
      if (withNonce) {
        req.tbsRequest.requestExtensions = [
          new pkijs.Extension({
            extnID: OID.ocspNonce,
            extnValue: new asn1js.OctetString({ valueHex: new Uint8Array(16).fill(7).buffer }).toBER(false),
          }),
        ];
      }
      const reqDer = new Uint8Array(req.toSchema(true).toBER(false));
      const parsed = parseOcspRequest(reqDer, [issuer.ocsp]);
      if (!parsed.ok) throw new Error('request did not parse');
      expect(parsed.items[0]!.serial).toBe(cert.serial);
      expect(parsed.nonce !== undefined).toBe(withNonce);
      for (const status of states) {
        const now = new Date();
        const ours = buildOcspResponse(
          { ...issuer.ocsp, signer: issuer.signer },
          [{ item: parsed.items[0]!, status }],
          now,
          3600_000,
          parsed.nonce,
        );
        // Reference: the pkijs objects the first version built.
        const thisUpdate = wholeSeconds(now);
        const data = new pkijs.ResponseData({
          responderID: new asn1js.OctetString({ valueHex: issuer.ocsp.responderKeyHash.slice().buffer }),
          producedAt: thisUpdate,
          responses: [
            new pkijs.SingleResponse({
              certID: req.tbsRequest.requestList[0]!.reqCert,
              certStatus: referenceStatus(status),
              thisUpdate,
              nextUpdate: wholeSeconds(new Date(now.getTime() + 3600_000)),
            }),
          ],
          ...(withNonce ? { responseExtensions: req.tbsRequest.requestExtensions! } : {}),
        });
        const want = new Uint8Array(data.toSchema(true).toBER(false));
        const resp = pkijs.OCSPResponse.fromBER(ours.slice());
        const basic = pkijs.BasicOCSPResponse.fromBER(resp.responseBytes!.response.valueBlock.valueHexView.slice());
        expect(Buffer.from(basic.tbsResponseData.tbsView).equals(Buffer.from(want))).toBe(true);
        expect(
          verifyBytes(
            OID.ecdsaSha256,
            issuer.publicKey,
            basic.tbsResponseData.tbsView,
            basic.signature.valueBlock.valueHexView,
          ),
        ).toBe(true);
      }
    }
  });
});

function referenceStatus(s: CertState): asn1js.AsnType {
  if (s.state === 'good') return new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 } });
  if (s.state === 'unknown') return new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 2 } });
  const code = REASON_CODE[s.reason];
  const value: asn1js.AsnType[] = [new asn1js.GeneralizedTime({ valueDate: wholeSeconds(s.revokedAt) })];
  if (code !== 0)
    value.push(
      new asn1js.Constructed({
        idBlock: { tagClass: 3, tagNumber: 0 },
        value: [new asn1js.Enumerated({ value: code })],
      }),
    );
  return new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 1 }, value });
}

describe('CRL', () => {
  it('the TBSCertList is byte-identical to the pkijs builder', () => {
    const issuer = internals();
    const reasons: RevocationReason[] = ['unspecified', 'keyCompromise', 'superseded', 'aACompromise'];
    const entries = Array.from({ length: 40 }, (_, i) => ({
      serial: i === 0 ? '00ff' + randomSerial().slice(4) : randomSerial(),
      revokedAt: wholeSeconds(new Date(Date.now() - i * 1000)),
      reason: reasons[i % reasons.length]!,
    }));
    const p = {
      crlNumber: 4242,
      thisUpdate: wholeSeconds(new Date()),
      nextUpdate: wholeSeconds(new Date(Date.now() + 86_400_000)),
    };
    for (const list of [entries, []]) {
      const joined = Buffer.concat(list.map((e) => encodeEntry(e)));
      const ours = assembleCrl(
        { name: issuer.cert.subject, ski: issuer.ski, signer: issuer.signer },
        p,
        joined,
        list.length,
      );
      const crl = new pkijs.CertificateRevocationList({
        version: 1,
        issuer: issuer.cert.subject,
        thisUpdate: x509Time(p.thisUpdate),
        nextUpdate: x509Time(p.nextUpdate),
        ...(list.length > 0
          ? {
              revokedCertificates: list.map((e) => {
                const code = REASON_CODE[e.reason];
                return new pkijs.RevokedCertificate({
                  userCertificate: serialToInteger(e.serial),
                  revocationDate: x509Time(e.revokedAt),
                  ...(code === 0
                    ? {}
                    : {
                        crlEntryExtensions: new pkijs.Extensions({
                          extensions: [ext(OID.crlReason, false, new asn1js.Enumerated({ value: code }))],
                        }),
                      }),
                });
              }),
            }
          : {}),
        crlExtensions: new pkijs.Extensions({
          extensions: [
            ext(
              OID.authorityKeyIdentifier,
              false,
              new pkijs.AuthorityKeyIdentifier({
                keyIdentifier: new asn1js.OctetString({ valueHex: issuer.ski.slice().buffer }),
              }),
            ),
            ext(OID.crlNumber, false, new asn1js.Integer({ value: p.crlNumber })),
          ],
        }),
      });
      crl.signature = issuer.signer.algorithm;
      const want = new Uint8Array((crl as unknown as { encodeTBS(): asn1js.Sequence }).encodeTBS().toBER(false));
      expect(Buffer.from(tbsOf(ours)).equals(Buffer.from(want))).toBe(true);
    }
  });

  it('a 10k-entry CRL from the fast path passes openssl crl -verify and lists a chosen revoked serial', async () => {
    // 10k revoked certificates written straight to the store (their entries are not encoded
    // yet: the first build encodes and keeps them), plus one revoked through the API.
    await db.exec(`
      INSERT INTO certificates (serial, subject_id, fqdn, issuer_id, der, spki_sha256, not_before, not_after, revoked_at, reason)
      SELECT md5('t10k' || i), 'bulk' || i, 'bulk.agents.internal', 'issuing-1', '\\x00'::bytea, md5('k' || i),
             now() - interval '1 day', now() + interval '30 days', date_trunc('second', now()),
             (ARRAY['keyCompromise','superseded','cessationOfOperation','unspecified'])[1 + i % 4]
      FROM generate_series(1, 10000) AS i;
      UPDATE ca_state SET revocations = revocations + 1;`);
    const k = opensslCsr(tmp.dir, 'P-256', { cn: 'chosen.agents.internal' });
    const chosen = await ca.issue({
      subjectId: 'chosen',
      fqdn: 'chosen.agents.internal',
      uri: 'ans://v1.chosen.agents.internal',
      csrPem: k.csr,
    });
    const first = await ca.crl();
    await ca.revokeSerial(chosen.serial, 'keyCompromise');
    const der = await ca.crl();
    expect(der).not.toBe(first);
    const crlFile = write(tmp.dir, 'crl10k.der', der);
    const chain = splitPem(ca.chainPem());
    const caFile = write(tmp.dir, 'issuing.pem', chain[0]!);
    const v = openssl(['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-CAfile', caFile]);
    expect(v.out).toContain('verify OK');
    const textFile = `${crlFile}.txt`;
    expect(openssl(['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-text', '-out', textFile]).status).toBe(0);
    const text = readFileSync(textFile, 'utf8');
    expect(text).toContain(`Serial Number: ${chosen.serial.toUpperCase()}`);
    const revoked = await db.query<{ n: string | number }>(
      "SELECT count(*) AS n FROM certificates WHERE issuer_id = 'issuing-1' AND revoked_at IS NOT NULL",
    );
    expect(Number(revoked[0]!.n)).toBeGreaterThan(10_000);
    expect(text.match(/Serial Number:/g)?.length).toBe(Number(revoked[0]!.n));
    // The chosen entry carries its reason.
    const at = text.indexOf(`Serial Number: ${chosen.serial.toUpperCase()}`);
    expect(text.slice(at, at + 300)).toContain('Key Compromise');
    // And the leaf fails openssl verify -crl_check with this CRL.
    const root = write(tmp.dir, 'root10k.pem', chain[chain.length - 1]!);
    const leaf = write(tmp.dir, 'chosen.pem', chosen.pem);
    const crlPem = `${crlFile}.pem`;
    expect(openssl(['crl', '-inform', 'DER', '-in', crlFile, '-out', crlPem]).status).toBe(0);
    const chk = openssl(['verify', '-crl_check', '-CAfile', root, '-untrusted', caFile, '-CRLfile', crlPem, leaf]);
    expect(chk.out).toContain('certificate revoked');
  });
});
