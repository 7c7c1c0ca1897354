/**
 * CA benchmarks: issuance in-process vs `openssl x509 -req` on the same CSRs, OCSP responses
 * per second, CRL generation with 100k revoked entries. One JSON line per figure.
 * Run: npx tsx bench/ca/run.ts [--n 2000]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createPrivateKey, webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CertificateAuthority } from '../../ca/index.js';
import { cnName, fromPemAll, toPem } from '../../ca/x509.js';
import { memoryStore, splitPem, tempDir } from '../../test/ca/helpers.js';

const N = Number(process.argv[process.argv.indexOf('--n') + 1]) || 2000;
const OPENSSL_N = 200;
const ZONE = 'agents.internal.';

function out(bench: string, value: number, unit: string, extra: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ bench, value: Math.round(value * 100) / 100, unit, ...extra })}\n`);
}

async function makeCsr(fqdn: string): Promise<string> {
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const csr = new pkijs.CertificationRequest();
  csr.subject = cnName(fqdn);
  await csr.subjectPublicKeyInfo.importKey(keys.publicKey);
  await csr.sign(keys.privateKey, 'SHA-256');
  return toPem('CERTIFICATE REQUEST', new Uint8Array(csr.toSchema().toBER(false)));
}

async function main(): Promise<void> {
  const tmp = tempDir();
  const db = await memoryStore();
  const ca = await CertificateAuthority.open({ db, zone: ZONE, publicUrl: 'http://127.0.0.1:8080', passphrase: 'bench' });

  const csrs: string[] = [];
  for (let i = 0; i < N; i++) csrs.push(await makeCsr(`a${i}.agents.internal`));

  // ---- issuance in-process (CSR checks + key-compromise lookup + signing + insert)
  for (let i = 0; i < 50; i++) await ca.issue({ subjectId: `warm${i}`, fqdn: `a${i}.agents.internal`, uri: `ans://v1.0.0.a${i}.agents.internal`, csrPem: csrs[i]! });
  const serials: string[] = [];
  const pems: string[] = [];
  let t = performance.now();
  for (let i = 0; i < N; i++) {
    const c = await ca.issue({ subjectId: `s${i}`, fqdn: `a${i}.agents.internal`, uri: `ans://v1.0.0.a${i}.agents.internal`, csrPem: csrs[i]! });
    serials.push(c.serial);
    pems.push(c.pem);
  }
  const issueRate = N / ((performance.now() - t) / 1000);
  out('ca.issue.inprocess', issueRate, 'certs/s', { n: N, store: db.hasVector ? 'pglite+vector' : 'pglite' });

  // ---- openssl x509 -req signing the same CSRs with the same intermediate key
  const rows = await db.query<{ key_pem: string }>("SELECT key_pem FROM ca_keys WHERE id = 'issuing-1'");
  const caKey = join(tmp.dir, 'int.key');
  writeFileSync(caKey, createPrivateKey({ key: rows[0]!.key_pem, passphrase: 'bench' }).export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const caCert = join(tmp.dir, 'int.pem');
  writeFileSync(caCert, splitPem(ca.chainPem())[0]!);
  const ext = join(tmp.dir, 'ext.cnf');
  writeFileSync(ext, 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
  for (let i = 0; i < OPENSSL_N; i++) writeFileSync(join(tmp.dir, `${i}.csr`), csrs[i]!);
  t = performance.now();
  for (let i = 0; i < OPENSSL_N; i++) {
    execFileSync('/usr/bin/openssl', ['x509', '-req', '-in', join(tmp.dir, `${i}.csr`), '-CA', caCert, '-CAkey', caKey, '-set_serial', `0x${serials[i]}`, '-days', '30', '-extfile', ext, '-out', join(tmp.dir, `${i}.crt`)], { stdio: 'ignore' });
  }
  const osslRate = OPENSSL_N / ((performance.now() - t) / 1000);
  out('ca.issue.openssl_x509_req', osslRate, 'certs/s', { n: OPENSSL_N, note: 'one openssl process per CSR' });
  out('ca.issue.ratio_vs_openssl', issueRate / osslRate, 'x');

  // ---- OCSP
  const issuerCert = new pkijs.Certificate({ schema: asn1js.fromBER(fromPemAll(ca.chainPem(), ['CERTIFICATE'])[0]!.slice()).result });
  const M = Math.min(2000, N);
  const withNonce: Uint8Array[] = [];
  const noNonce: Uint8Array[] = [];
  for (let i = 0; i < M; i++) {
    const leaf = new pkijs.Certificate({ schema: asn1js.fromBER(fromPemAll(pems[i]!, ['CERTIFICATE'])[0]!.slice()).result });
    for (const nonce of [true, false]) {
      const req = new pkijs.OCSPRequest();
      await req.createForCertificate(leaf, { hashAlgorithm: 'SHA-1', issuerCertificate: issuerCert });
      if (nonce) {
        req.tbsRequest.requestExtensions = [
          new pkijs.Extension({ extnID: '1.3.6.1.5.5.7.48.1.2', extnValue: new asn1js.OctetString({ valueHex: webcrypto.getRandomValues(new Uint8Array(16)).buffer }).toBER(false) }),
        ];
      }
      (nonce ? withNonce : noNonce).push(new Uint8Array(req.toSchema(true).toBER(false)));
    }
  }
  await ca.revokeSerial(serials[0]!, 'keyCompromise');
  for (let i = 0; i < 100; i++) await ca.ocsp(withNonce[i]!);
  t = performance.now();
  for (const r of withNonce) await ca.ocsp(r);
  out('ca.ocsp.signed', M / ((performance.now() - t) / 1000), 'responses/s', { n: M, note: 'nonce in every request: each response freshly signed' });
  for (const r of noNonce) await ca.ocsp(r); // fills the per-serial cache
  t = performance.now();
  for (let k = 0; k < 3; k++) for (const r of noNonce) await ca.ocsp(r);
  out('ca.ocsp.cached', (3 * M) / ((performance.now() - t) / 1000), 'responses/s', { n: 3 * M, note: 'no nonce: cached signed answer' });

  // ---- CRL with 100k revoked entries
  await db.exec(`
    INSERT INTO certificates (serial, subject_id, fqdn, issuer_id, der, spki_sha256, not_before, not_after, revoked_at, reason)
    SELECT md5('bench' || i), 'bulk' || i, 'bulk.agents.internal', 'issuing-1', '\\x00'::bytea, md5(i::text),
           now() - interval '1 day', now() + interval '30 days', now(), (ARRAY['keyCompromise','superseded','cessationOfOperation','unspecified'])[1 + i % 4]
    FROM generate_series(1, 100000) AS i;
    UPDATE ca_state SET revocations = revocations + 1;`);
  ca.invalidate();
  t = performance.now();
  const crl = await ca.crl();
  const crlMs = performance.now() - t;
  out('ca.crl.100k', crlMs / 1000, 's', { entries: 100_001, bytes: crl.byteLength, dbAndSign: true });
  const crlFile = join(tmp.dir, 'big.crl');
  writeFileSync(crlFile, crl);
  const check = spawnSync('/usr/bin/openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-CAfile', caCert], { encoding: 'utf8' });
  out('ca.crl.100k.openssl_verify_ok', `${check.stdout}${check.stderr}`.includes('verify OK') ? 1 : 0, 'bool');
  ca.invalidate();
  t = performance.now();
  await ca.crl();
  out('ca.crl.100k.rebuild', (performance.now() - t) / 1000, 's');

  await db.close();
  tmp.cleanup();
}

main().catch((e: unknown) => {
  process.stderr.write(`${String(e instanceof Error ? e.stack : e)}\n`);
  process.exit(1);
});
