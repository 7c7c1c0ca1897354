/**
 * The CA through the running server (issue 3): chain export, renewal, revocation seen by CRL,
 * OCSP, DNS, resolve and authentication within a second, compromised keys refused, rotation.
 */
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentToken } from '../../src/client/index.js';
import { card, client } from '../helpers/api.js';
import { opensslCsr } from '../helpers/pki.js';
import { runCli, startServer, type RunningServer } from '../helpers/server.js';

let s: RunningServer;
let api: ReturnType<typeof client>;
const dir = mkdtempSync(join(tmpdir(), 'ans-ca-e2e-'));
const fqdn = 'vault.agents.internal';
let id: string;
let key: { keyPem: string; dir: string };
let cert: string;
let pendingTwin: string;

beforeAll(async () => {
  s = await startServer();
  api = client(s.url);
});
afterAll(async () => {
  await s?.stop();
});

const file = (name: string, text: string) => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};
const dig = (type: string, name: string) =>
  execFileSync('dig', ['@127.0.0.1', '-p', String(s.dnsPort), '+short', type, name])
    .toString()
    .trim();
const csrFor = (keyDir: string, name = fqdn) =>
  execFileSync('openssl', [
    'req',
    '-new',
    '-key',
    join(keyDir, 'key.pem'),
    '-subj',
    `/CN=${name}`,
    '-addext',
    `subjectAltName=DNS:${name}`,
  ]).toString();
const spkiSha256 = (pem: string) =>
  createHash('sha256')
    .update(new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
const token = async (keyPem = key.keyPem, certPem = cert) => {
  const chain = (await api.get<string>('/v1/ca/certificate')).body;
  return agentToken({ agentId: id, zone: 'agents.internal.', keyPem, certificatePem: certPem + chain });
};
function ocsp(certPem: string): string {
  try {
    return execFileSync(
      'openssl',
      [
        'ocsp',
        '-issuer',
        join(dir, 'issuing.pem'),
        '-cert',
        file('subject.pem', certPem),
        '-url',
        `${s.url}/v1/ca/ocsp`,
        '-CAfile',
        join(dir, 'root.pem'),
        '-no_nonce',
      ],
      { stdio: 'pipe' },
    ).toString();
  } catch (e) {
    const x = e as { stdout?: Buffer; stderr?: Buffer };
    return `${x.stdout?.toString() ?? ''}${x.stderr?.toString() ?? ''}`;
  }
}

describe('CA through the running server', () => {
  it('`ans ca export` writes root and chain that openssl verifies an approved agent with', async () => {
    const exp = await runCli(['ca', 'export', '--out', dir, '--server', s.url]);
    expect(exp.stderr).toBe('');
    key = opensslCsr(fqdn);
    const real = await api.post<{ id: string }>('/v1/agents', { card: card('vault'), csr: csrFor(key.dir) });
    id = real.body.id;
    const a = await api.post<{ certificate: string }>(`/v1/agents/${id}/approve`, {}, s.adminToken);
    cert = a.body.certificate;
    const out = execFileSync('openssl', [
      'verify',
      '-CAfile',
      join(dir, 'root.pem'),
      '-untrusted',
      join(dir, 'chain.pem'),
      file('leaf.pem', cert),
    ]).toString();
    expect(out).toContain('OK');
    const chain = readFileSync(join(dir, 'chain.pem'), 'utf8');
    file('issuing.pem', chain.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/)![0]);
  });

  it('puts CRL distribution point and OCSP URLs of this server in the certificate', () => {
    const text = execFileSync('openssl', ['x509', '-noout', '-text'], { input: cert }).toString();
    expect(text).toContain(`URI:${s.url}/v1/ca/crl`);
    expect(text).toContain(`OCSP - URI:${s.url}/v1/ca/ocsp`);
    expect(text).toMatch(/CA:FALSE/);
  });

  it('answers OCSP good for a fresh certificate (openssl ocsp)', () => {
    expect(ocsp(cert)).toContain(': good');
  });

  it('publishes TLSA 3 1 1 = SHA-256 of the SPKI, and follows a renewal with a new key', async () => {
    const port = new URL(card('vault').endpoints[0]!.url).port;
    expect(dig('TLSA', `_${port}._tcp.${fqdn}`).replace(/\s/g, '').toLowerCase()).toBe(`311${spkiSha256(cert)}`);
    const fresh = opensslCsr(fqdn);
    const t = await token();
    const r = await api.post<{ certificate: string }>(`/v1/agents/${id}/renew`, { csr: fresh.csrPem }, t);
    expect(r.status).toBe(200);
    const replay = await api.post<{ code: string }>(`/v1/agents/${id}/renew`, { csr: fresh.csrPem }, t);
    expect(replay.status).toBe(401);
    expect(replay.body.code).toBe('ANS_ERR_TOKEN_REPLAYED');
    cert = r.body.certificate;
    key = fresh;
    await new Promise((res) => setTimeout(res, 300));
    expect(dig('TLSA', `_${port}._tcp.${fqdn}`).replace(/\s/g, '').toLowerCase()).toBe(`311${spkiSha256(cert)}`);
    expect((await api.post(`/v1/agents/${id}/heartbeat`, {}, await token())).status).toBe(200);
  });

  it('revocation by the agent reaches CRL, OCSP, DNS, resolve and authentication within a second', async () => {
    // A registration with the same key, still pending when the key is revoked (see below).
    const twin = await api.post<{ id: string }>('/v1/agents', {
      card: card('vault3'),
      csr: csrFor(key.dir, 'vault3.agents.internal'),
    });
    expect(twin.status).toBe(202);
    pendingTwin = twin.body.id;
    const old = await token();
    const before = (await api.get<{ results: { id: string }[] }>('/v1/resolve?q=vault%20agent&k=5')).body.results.map(
      (r) => r.id,
    );
    expect(before).toContain(id);
    const r = await api.post(`/v1/agents/${id}/revoke`, { reason: 'keyCompromise' }, await token());
    expect(r.status).toBe(200);
    await new Promise((res) => setTimeout(res, 1000));

    const crl = await fetch(`${s.url}/v1/ca/crl`);
    const crlFile = join(dir, 'crl.der');
    writeFileSync(crlFile, Buffer.from(await crl.arrayBuffer()));
    execFileSync('openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-out', join(dir, 'crl.pem')]);
    const v = execFileSync('sh', [
      '-c',
      `openssl verify -crl_check -CRLfile ${join(dir, 'crl.pem')} -CAfile ${join(dir, 'root.pem')} -untrusted ${join(dir, 'chain.pem')} ${file('revoked.pem', cert)} 2>&1 || true`,
    ]).toString();
    expect(v).toContain('certificate revoked');
    expect(ocsp(cert)).toMatch(/: revoked[\s\S]*Reason: keyCompromise/);
    expect(dig('SRV', `_a2a._tcp.${fqdn}`)).toBe('');
    const after = (await api.get<{ results: { id: string }[] }>('/v1/resolve?q=vault%20agent&k=5')).body.results.map(
      (x) => x.id,
    );
    expect(after).not.toContain(id);
    expect((await api.post(`/v1/agents/${id}/heartbeat`, {}, old)).status).toBe(401);
    const renew = await api.post(`/v1/agents/${id}/renew`, { csr: opensslCsr(fqdn).csrPem }, s.adminToken);
    expect(renew.status).toBe(409);
  });

  it('never certifies a key revoked for keyCompromise again, even under another name', async () => {
    const r = await api.post<{ code: string; detail: string }>('/v1/agents', {
      card: card('vault2'),
      csr: csrFor(key.dir, 'vault2.agents.internal'),
    });
    expect(r.status).toBe(400);
    expect(r.body.detail).toMatch(/compromise/i);
  });

  it('refuses at approval a key revoked for keyCompromise after it registered, and changes nothing', async () => {
    const auditBefore = (await api.get<{ entries: unknown[] }>(`/v1/audit?subject=${pendingTwin}`, s.adminToken)).body;
    const r = await api.post<{ code: string }>(`/v1/agents/${pendingTwin}/approve`, {}, s.adminToken);
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('CA_ERR_KEY_COMPROMISED');
    const after = await api.get<{ status: string }>(`/v1/agents/${pendingTwin}`, s.adminToken);
    expect(after.body.status).toBe('pending');
    expect((await api.get(`/v1/agents/${pendingTwin}/certificate`)).status).toBe(404);
    expect((await api.get<{ entries: unknown[] }>(`/v1/audit?subject=${pendingTwin}`, s.adminToken)).body).toEqual(
      auditBefore,
    );
  });

  it('`ans ca rotate` keeps issued certificates valid and issues from the new intermediate', async () => {
    const k = opensslCsr('other.agents.internal');
    const reg = await api.post<{ id: string }>('/v1/agents', { card: card('other'), csr: k.csrPem });
    const before = (await api.post<{ certificate: string }>(`/v1/agents/${reg.body.id}/approve`, {}, s.adminToken)).body
      .certificate;
    const rot = await runCli(['ca', 'rotate', '--server', s.url, '--token', s.adminToken]);
    expect(rot.stderr).toBe('');
    expect(rot.stdout).toContain('rotated');
    await runCli(['ca', 'export', '--out', dir, '--server', s.url]);
    const verify = (pem: string) =>
      execFileSync('openssl', [
        'verify',
        '-CAfile',
        join(dir, 'root.pem'),
        '-untrusted',
        join(dir, 'chain.pem'),
        file('x.pem', pem),
      ]).toString();
    expect(verify(before)).toContain('OK');
    const k2 = opensslCsr('newer.agents.internal');
    const reg2 = await api.post<{ id: string }>('/v1/agents', { card: card('newer'), csr: k2.csrPem });
    const after = (await api.post<{ certificate: string }>(`/v1/agents/${reg2.body.id}/approve`, {}, s.adminToken)).body
      .certificate;
    expect(verify(after)).toContain('OK');
    const aki = (pem: string) =>
      execFileSync('openssl', ['x509', '-noout', '-ext', 'authorityKeyIdentifier'], { input: pem }).toString();
    expect(aki(after)).not.toBe(aki(before));
  });
});
