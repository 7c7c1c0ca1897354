/**
 * CA benchmarks: issuance in-process vs `openssl x509 -req` on the same CSRs, OCSP responses
 * per second (each path named), CRL generation with 100k revoked entries (verified by
 * openssl). One JSON line per figure; the first and last lines give the machine's load.
 * Run: npx tsx bench/ca/run.ts [--n 2000]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createPrivateKey, webcrypto } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CertificateAuthority } from '../../ca/index.js';
import { encodeEntry } from '../../ca/crl.js';
import { cnName, fromPemAll, randomSerial, toPem, wholeSeconds } from '../../ca/x509.js';
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

function load(when: string): void {
  out(`machine.load.${when}`, loadavg()[0]!, 'loadavg1', {
    cores: cpus().length,
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
  });
}

async function main(): Promise<void> {
  load('start');
  const tmp = tempDir();
  const db = await memoryStore();
  const ca = await CertificateAuthority.open({
    db,
    zone: ZONE,
    publicUrl: 'http://127.0.0.1:8080',
    passphrase: 'bench',
  });

  const csrs: string[] = [];
  for (let i = 0; i < N; i++) csrs.push(await makeCsr(`a${i}.agents.internal`));

  // ---- issuance in-process (CSR checks + key-compromise lookup + signing + insert)
  for (let i = 0; i < 50; i++)
    await ca.issue({
      subjectId: `warm${i}`,
      fqdn: `a${i}.agents.internal`,
      uri: `ans://v1.0.0.a${i}.agents.internal`,
      csrPem: csrs[i]!,
    });
  const serials: string[] = [];
  const pems: string[] = [];
  let cpu = process.cpuUsage();
  let t = performance.now();
  for (let i = 0; i < N; i++) {
    const c = await ca.issue({
      subjectId: `s${i}`,
      fqdn: `a${i}.agents.internal`,
      uri: `ans://v1.0.0.a${i}.agents.internal`,
      csrPem: csrs[i]!,
    });
    serials.push(c.serial);
    pems.push(c.pem);
  }
  const issueRate = N / ((performance.now() - t) / 1000);
  cpu = process.cpuUsage(cpu);
  const cpuUs = (cpu.user + cpu.system) / N;
  out('ca.issue.inprocess', issueRate, 'certs/s', {
    n: N,
    store: db.hasVector ? 'pglite+vector' : 'pglite',
    path: 'issue(): CSR parse + policy + signature check, TBS from issuer template, ECDSA P-256 sign, one INSERT (autocommit), sequential',
    target: 1000,
  });
  // On a shared machine the wall-clock rate depends on the neighbours; the process's own CPU
  // time per certificate (PGlite runs in this thread) gives the rate on one free core.
  out('ca.issue.inprocess.cpu_per_cert', cpuUs, 'us', { ratePerFreeCore: Math.round(1e6 / cpuUs) });

  // ---- the same, 16 callers at once (e.g. concurrent approvals): their INSERTs are grouped
  const C = 16;
  const csrs2: string[] = [];
  for (let i = 0; i < N; i++) csrs2.push(await makeCsr(`c${i}.agents.internal`));
  let next = 0;
  cpu = process.cpuUsage();
  t = performance.now();
  await Promise.all(
    Array.from({ length: C }, async () => {
      for (let i = next++; i < N; i = next++) {
        await ca.issue({
          subjectId: `c${i}`,
          fqdn: `c${i}.agents.internal`,
          uri: `ans://v1.0.0.c${i}.agents.internal`,
          csrPem: csrs2[i]!,
        });
      }
    }),
  );
  out('ca.issue.inprocess.concurrent', N / ((performance.now() - t) / 1000), 'certs/s', {
    n: N,
    callers: C,
    path: 'as above, 16 issue() calls in flight: INSERTs of certificates signed meanwhile go in one statement',
    target: 1000,
  });
  cpu = process.cpuUsage(cpu);
  const cpuUs2 = (cpu.user + cpu.system) / N;
  out('ca.issue.inprocess.concurrent.cpu_per_cert', cpuUs2, 'us', { ratePerFreeCore: Math.round(1e6 / cpuUs2) });

  // ---- openssl x509 -req signing the same CSRs with the same intermediate key
  const rows = await db.query<{ key_pem: string }>("SELECT key_pem FROM ca_keys WHERE id = 'issuing-1'");
  const caKey = join(tmp.dir, 'int.key');
  writeFileSync(
    caKey,
    createPrivateKey({ key: rows[0]!.key_pem, passphrase: 'bench' }).export({ type: 'pkcs8', format: 'pem' }),
    { mode: 0o600 },
  );
  const caCert = join(tmp.dir, 'int.pem');
  writeFileSync(caCert, splitPem(ca.chainPem())[0]!);
  const ext = join(tmp.dir, 'ext.cnf');
  writeFileSync(
    ext,
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
  );
  for (let i = 0; i < OPENSSL_N; i++) writeFileSync(join(tmp.dir, `${i}.csr`), csrs[i]!);
  t = performance.now();
  for (let i = 0; i < OPENSSL_N; i++) {
    execFileSync(
      '/usr/bin/openssl',
      [
        'x509',
        '-req',
        '-in',
        join(tmp.dir, `${i}.csr`),
        '-CA',
        caCert,
        '-CAkey',
        caKey,
        '-set_serial',
        `0x${serials[i]}`,
        '-days',
        '30',
        '-extfile',
        ext,
        '-out',
        join(tmp.dir, `${i}.crt`),
      ],
      { stdio: 'ignore' },
    );
  }
  const osslRate = OPENSSL_N / ((performance.now() - t) / 1000);
  out('ca.issue.openssl_x509_req', osslRate, 'certs/s', { n: OPENSSL_N, note: 'one openssl process per CSR' });
  out('ca.issue.ratio_vs_openssl', issueRate / osslRate, 'x');

  // ---- OCSP
  const issuerCert = new pkijs.Certificate({
    schema: asn1js.fromBER(fromPemAll(ca.chainPem(), ['CERTIFICATE'])[0]!.slice()).result,
  });
  const M = Math.min(2000, N);
  const withNonce: Uint8Array[] = [];
  const noNonce: Uint8Array[] = [];
  for (let i = 0; i < M; i++) {
    const leaf = new pkijs.Certificate({
      schema: asn1js.fromBER(fromPemAll(pems[i]!, ['CERTIFICATE'])[0]!.slice()).result,
    });
    for (const nonce of [true, false]) {
      const req = new pkijs.OCSPRequest();
      await req.createForCertificate(leaf, { hashAlgorithm: 'SHA-1', issuerCertificate: issuerCert });
      if (nonce) {
        req.tbsRequest.requestExtensions = [
          new pkijs.Extension({
            extnID: '1.3.6.1.5.5.7.48.1.2',
            extnValue: new asn1js.OctetString({ valueHex: webcrypto.getRandomValues(new Uint8Array(16)).buffer }).toBER(
              false,
            ),
          }),
        ];
      }
      (nonce ? withNonce : noNonce).push(new Uint8Array(req.toSchema(true).toBER(false)));
    }
  }
  // A revocation elsewhere only drops that certificate's cached status (targeted invalidation).
  await ca.revokeSerial(serials[0]!, 'keyCompromise');
  for (let i = 0; i < 100; i++) await ca.ocsp(withNonce[i]!);
  t = performance.now();
  for (const r of withNonce) await ca.ocsp(r);
  out('ca.ocsp.nonce', M / ((performance.now() - t) / 1000), 'responses/s', {
    n: M,
    path: 'nonce in every request: parse + status from the in-memory cache + freshly signed response',
    target: 2000,
  });
  ca.invalidate(); // drop every cached status: each request below also reads its row
  t = performance.now();
  for (const r of withNonce) await ca.ocsp(r);
  out('ca.ocsp.nonce.cold_status', M / ((performance.now() - t) / 1000), 'responses/s', {
    n: M,
    path: 'nonce, status cache empty: parse + one SELECT per request + freshly signed response',
  });
  for (const r of noNonce) await ca.ocsp(r); // produces (and stores) the nonce-less answers
  t = performance.now();
  for (let k = 0; k < 3; k++) for (const r of noNonce) await ca.ocsp(r);
  out('ca.ocsp.no_nonce.preproduced', (3 * M) / ((performance.now() - t) / 1000), 'responses/s', {
    n: 3 * M,
    path: 'no nonce (RFC 5019): pre-produced signed answer looked up by request bytes, valid 60 s or until that certificate changes',
  });

  // ---- CRL with 100k revoked entries. (1) The steady state: 100k rows written as a revocation
  // through the API leaves them (revoked_at, reason, and the entry encoded by crl.encodeEntry),
  // bulk-inserted here to save time; then one more revocation through the API and the next CRL.
  const B = 100_000;
  const reasons = ['keyCompromise', 'superseded', 'cessationOfOperation', 'unspecified'] as const;
  const revokedAt = wholeSeconds(new Date());
  for (let i = 0; i < B; i += 10_000) {
    const ser: string[] = [];
    const rea: string[] = [];
    const ent: string[] = [];
    for (let j = i; j < Math.min(B, i + 10_000); j++) {
      const serial = randomSerial();
      ser.push(serial);
      rea.push(reasons[j % 4]!);
      ent.push(Buffer.from(encodeEntry({ serial, revokedAt, reason: reasons[j % 4]! })).toString('hex'));
    }
    await db.query(
      `INSERT INTO certificates (serial, subject_id, fqdn, issuer_id, der, spki_sha256, not_before, not_after, revoked_at, reason, revoked_epoch, crl_entry)
       SELECT s, 'bulk-' || s, 'bulk.agents.internal', 'issuing-1', '\\x00'::bytea, s, now() - interval '1 day', now() + interval '30 days', $4, r, 0, decode(e, 'hex')
       FROM unnest($1::text[], $2::text[], $3::text[]) AS v(s, r, e)`,
      [ser, rea, ent, revokedAt],
    );
  }
  await db.exec('UPDATE ca_state SET revocations = revocations + 1');
  ca.invalidate();
  await ca.crl();
  // The steady state: one more revocation through the API, then the next CRL.
  await ca.revokeSerial(serials[1]!, 'superseded');
  t = performance.now();
  let crl = await ca.crl();
  out('ca.crl.100k', (performance.now() - t) / 1000, 's', {
    entries: B + 2, // + serials[0] (revoked before the OCSP runs) and serials[1]
    bytes: crl.byteLength,
    path: 'after one more revocation through the API: string_agg of the stored entries in SQL, TBS head + sign, store the CRL',
    target: 2,
  });
  const crlFile = join(tmp.dir, 'big.crl');
  writeFileSync(crlFile, crl);
  const check = spawnSync('/usr/bin/openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-CAfile', caCert], {
    encoding: 'utf8',
  });
  out('ca.crl.100k.openssl_verify_ok', `${check.stdout}${check.stderr}`.includes('verify OK') ? 1 : 0, 'bool');
  const textFile = join(tmp.dir, 'big.txt');
  spawnSync('/usr/bin/openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-text', '-out', textFile]);
  const text = readFileSync(textFile, 'utf8');
  out('ca.crl.100k.openssl_entries', text.match(/Serial Number:/g)?.length ?? 0, 'entries', {
    listsRevokedSerial: text.includes(`Serial Number: ${serials[1]!.toUpperCase()}`),
  });
  ca.invalidate();
  t = performance.now();
  await ca.crl();
  out('ca.crl.100k.rebuild', (performance.now() - t) / 1000, 's', {
    path: 'no change, cache dropped: aggregate + sign + store only',
  });

  // (2) The cold path: 100k more revoked rows written by hand in SQL, without their entries
  // (as after a bulk revocation in SQL): the next build encodes and stores 100k entries.
  await db.exec(`
    INSERT INTO certificates (serial, subject_id, fqdn, issuer_id, der, spki_sha256, not_before, not_after, revoked_at, reason)
    SELECT md5('bench' || i), 'bulk' || i, 'bulk.agents.internal', 'issuing-1', '\\x00'::bytea, md5(i::text),
           now() - interval '1 day', now() + interval '30 days', date_trunc('second', now()),
           (ARRAY['keyCompromise','superseded','cessationOfOperation','unspecified'])[1 + i % 4]
    FROM generate_series(1, 100000) AS i;
    UPDATE ca_state SET revocations = revocations + 1;`);
  ca.invalidate();
  t = performance.now();
  crl = await ca.crl();
  out('ca.crl.200k.cold_100k_unencoded', (performance.now() - t) / 1000, 's', {
    entries: 2 * B + 2,
    bytes: crl.byteLength,
    path: '100k entries never encoded: select + encode (asn1js) + store 100k entries, then aggregate 200k + sign',
  });

  load('end');
  await db.close();
  tmp.cleanup();
}

main().catch((e: unknown) => {
  process.stderr.write(`${String(e instanceof Error ? e.stack : e)}\n`);
  process.exit(1);
});
