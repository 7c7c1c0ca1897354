/**
 * The foundation's story through the real interfaces: `ans serve` as a process, HTTP, the CLI,
 * openssl for keys/CSRs/verification, dig for DNS.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentToken } from '../../src/client/index.js';
import { card, client } from '../helpers/api.js';
import { opensslCsr, opensslVerify } from '../helpers/pki.js';
import { runCli, startServer, type RunningServer } from '../helpers/server.js';

let s: RunningServer;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  s = await startServer({ args: ['--heartbeat-interval', '1'] });
  api = client(s.url);
});
afterAll(async () => {
  await s?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('first start', () => {
  it('writes the admin token with mode 0600 and prints it once', () => {
    expect(statSync(join(s.dataDir, 'admin.token')).mode & 0o777).toBe(0o600);
    expect(s.adminToken).toMatch(/^ans_admin_/);
    expect(s.logs.join('\n')).toContain(s.adminToken);
  });
  it('answers healthz, readyz, metrics and the OpenAPI document', async () => {
    expect((await api.get('/healthz')).status).toBe(200);
    expect((await api.get('/readyz')).body).toEqual({ status: 'ready' });
    const m = await api.get('/metrics');
    expect(String(m.body)).toContain('ans_http_request_duration_seconds');
    const doc = await api.get<{ paths: Record<string, unknown> }>('/docs/json');
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining(['/v1/agents', '/v1/agents/{id}/approve', '/v1/resolve']),
    );
  });
});

describe('register -> approve -> use -> deregister', () => {
  const fqdn = 'weather.agents.internal';
  let id: string;
  let keyPem: string;
  let certPem: string;
  let chainPem: string;

  it('registers with a card and an openssl CSR: 202 pending', async () => {
    const k = opensslCsr(fqdn);
    keyPem = k.keyPem;
    const r = await api.post<{ id: string; status: string }>('/v1/agents', { card: card('weather'), csr: k.csrPem });
    expect(r.status).toBe(202);
    expect(r.body.status).toBe('pending');
    id = r.body.id;
    expect((await api.get<{ status: string }>(`/v1/agents/${id}`)).body.status).toBe('pending');
  });

  it('shows in `ans admin pending` and is approved by `ans admin approve`', async () => {
    const pending = await runCli(['admin', 'pending', '--server', s.url, '--data-dir', s.dataDir]);
    expect(pending.code).toBe(0);
    expect(pending.stdout).toContain(id);
    expect(pending.stdout).toContain(fqdn);
    const ok = await runCli(['admin', 'approve', id, '--server', s.url, '--token', s.adminToken]);
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toContain(`approved ${fqdn}`);
    const a = await api.get<{ status: string }>(`/v1/agents/${id}`);
    expect(a.body.status).toBe('active');
  });

  it('serves a certificate that openssl verifies against /v1/ca/certificate', async () => {
    const c = await api.get<{ certificate: string; chain: string; status: string }>(`/v1/agents/${id}/certificate`);
    expect(c.body.status).toBe('good');
    certPem = c.body.certificate;
    chainPem = (await api.get<string>('/v1/ca/certificate')).body;
    expect(opensslVerify(chainPem, certPem).ok).toBe(true);
    const text = execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName,extendedKeyUsage'], {
      input: certPem,
    }).toString();
    expect(text).toContain(`DNS:${fqdn}`);
    expect(text).toContain(`URI:ans://v1.0.0.${fqdn}`);
    expect(text).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/);
  });

  it('publishes the agent in DNS (SRV, TXT) once approved', async () => {
    const srv = execFileSync('dig', [
      '@127.0.0.1',
      '-p',
      String(s.dnsPort),
      '+short',
      'SRV',
      `_a2a._tcp.${fqdn}`,
    ]).toString();
    expect(srv.trim()).not.toBe('');
    expect(srv).toContain('8443');
    const txt = execFileSync('dig', ['@127.0.0.1', '-p', String(s.dnsPort), '+short', 'TXT', fqdn]).toString();
    expect(txt).toContain(`id=${id}`);
  });

  it('`ans dns zone` prints the zone from the running server, and kzonecheck accepts it', async () => {
    const z = await runCli(['dns', 'zone', '--server', s.url, '--token', s.adminToken]);
    expect(z.stderr).toBe('');
    expect(z.stdout).toMatch(/_a2a\._tcp\.weather\.agents\.internal\.\s+\d+\s+IN\s+SRV\s+10 1 8443/);
    const file = join(mkdtempSync(join(tmpdir(), 'ans-zone-')), 'zone');
    writeFileSync(file, z.stdout);
    execFileSync('kzonecheck', ['-o', 'agents.internal.', file], { stdio: 'pipe' });
  });

  const tok = (opts: { lifetimeSeconds?: number; now?: Date } = {}) =>
    agentToken({ agentId: id, zone: 'agents.internal.', keyPem, certificatePem: certPem + chainPem, ...opts });

  it('takes heartbeats signed by the agent key, and refuses a replayed token', async () => {
    const t = await tok();
    const hb = await api.post<{ liveness: string }>(`/v1/agents/${id}/heartbeat`, {}, t);
    expect(hb.status).toBe(200);
    expect(hb.body.liveness).toBe('online');
    const again = await api.post<{ code: string }>(`/v1/agents/${id}/heartbeat`, {}, t);
    expect(again.status).toBe(401);
    expect(again.body.code).toBe('ANS_ERR_TOKEN_REPLAYED');
  });

  it('marks the agent offline after 3 missed intervals and online again on a heartbeat', async () => {
    await sleep(3500);
    expect((await api.get<{ liveness: string }>(`/v1/agents/${id}`)).body.liveness).toBe('offline');
    await api.post(`/v1/agents/${id}/heartbeat`, {}, await tok());
    expect((await api.get<{ liveness: string }>(`/v1/agents/${id}`)).body.liveness).toBe('online');
  });

  it('updates in place within a major version and refuses an incompatible change', async () => {
    const v11 = card('weather', {
      version: '1.1.0',
      skills: [...card('weather').skills, { id: 'alerts', name: 'Alerts', description: 'Severe weather alerts' }],
    });
    const up = await api.put<{ version: string; certificate?: unknown }>(
      `/v1/agents/${id}`,
      { card: v11 },
      await tok(),
    );
    expect(up.status).toBe(200);
    expect(up.body.version).toBe('1.1.0');
    expect(up.body.certificate).toBeUndefined();

    const dropped = card('weather', { version: '1.2.0' }); // 'alerts' removed
    const bad = await api.put<{ code: string; detail: string }>(`/v1/agents/${id}`, { card: dropped }, await tok());
    expect(bad.status).toBe(409);
    expect(bad.body.code).toBe('ANS_ERR_INCOMPATIBLE_CHANGE');
    expect(bad.body.detail).toContain("skill 'alerts' removed");
    expect((await api.get<{ version: string }>(`/v1/agents/${id}`)).body.version).toBe('1.1.0');
  });

  it('takes an incompatible change with a new major version and issues a new certificate', async () => {
    const v2 = card('weather', { version: '2.0.0' });
    const up = await api.put<{ version: string; certificate: { certificate: string } }>(
      `/v1/agents/${id}`,
      { card: v2 },
      await tok(),
    );
    expect(up.status).toBe(200);
    const text = execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName'], {
      input: up.body.certificate.certificate,
    }).toString();
    expect(text).toContain(`URI:ans://v2.0.0.${fqdn}`);
    certPem = up.body.certificate.certificate;
    const full = await api.get<{ versions: { version: string }[] }>(`/v1/agents/${id}`, s.adminToken);
    expect(full.body.versions.map((v) => v.version)).toEqual(['1.0.0', '1.1.0', '2.0.0']);
  });

  it('deregisters; the label is free again and the old token stops working', async () => {
    const t = await tok();
    const d = await api.del<{ status: string }>(`/v1/agents/${id}`, t);
    expect(d.status).toBe(200);
    expect(d.body.status).toBe('deregistered');
    const hb = await api.post(`/v1/agents/${id}/heartbeat`, {}, await tok());
    expect(hb.status).toBe(401);
    const again = await api.post('/v1/agents', { card: card('weather'), csr: opensslCsr(fqdn).csrPem });
    expect(again.status).toBe(202);
    expect(again.body['id']).not.toBe(id);
  });

  it('rejects: `ans admin reject` moves a pending agent to rejected and frees its label', async () => {
    const r = await api.post<{ id: string }>('/v1/agents', {
      card: card('rainy'),
      csr: opensslCsr('rainy.agents.internal').csrPem,
    });
    const out = await runCli([
      'admin',
      'reject',
      r.body.id,
      '--reason',
      'not ours',
      '--server',
      s.url,
      '--token',
      s.adminToken,
    ]);
    expect(out.code).toBe(0);
    expect((await api.get<{ status: string }>(`/v1/agents/${r.body.id}`)).body.status).toBe('rejected');
    const approve = await api.post<{ code: string }>(`/v1/agents/${r.body.id}/approve`, {}, s.adminToken);
    expect(approve.status).toBe(409);
    expect(approve.body.code).toBe('ANS_ERR_ILLEGAL_TRANSITION');
    expect(
      (await api.post('/v1/agents', { card: card('rainy'), csr: opensslCsr('rainy.agents.internal').csrPem })).status,
    ).toBe(202);
  });

  it('keeps a verifiable hash-chained audit of all of it', async () => {
    const v = await runCli(['admin', 'audit', '--verify', '--server', s.url, '--token', s.adminToken]);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/audit chain intact: \d+ entries verified/);
    const log = await api.get<{ entries: { action: string; subject: string }[] }>(
      `/v1/audit?subject=${id}`,
      s.adminToken,
    );
    expect(log.body.entries.map((e) => e.action)).toEqual([
      'agent.register',
      'agent.approve',
      'agent.update',
      'agent.update',
      'agent.deregister',
    ]);
  });
});

describe('the agent CLI', () => {
  it('init -> register -> (admin approve) -> token -> heartbeat', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ans-agent-'));
    const init = await runCli(['agent', 'init', '--label', 'clock', '--dir', dir]);
    expect(init.code).toBe(0);
    expect(statSync(join(dir, 'key.pem')).mode & 0o777).toBe(0o600);
    const reqText = execFileSync('openssl', [
      'req',
      '-in',
      join(dir, 'csr.pem'),
      '-noout',
      '-verify',
      '-subject',
    ]).toString();
    expect(reqText).toContain('clock.agents.internal');
    const c = JSON.parse(readFileSync(join(dir, 'card.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'card.json'), JSON.stringify({ ...c, description: 'Tells the time.' }));
    const reg = await runCli(['agent', 'register', '--dir', dir, '--server', s.url]);
    expect(reg.stderr).toBe('');
    const id = reg.stdout.split(' ')[0]!;
    expect((await runCli(['admin', 'approve', id, '--server', s.url, '--token', s.adminToken])).code).toBe(0);
    const hb = await runCli(['agent', 'heartbeat', '--dir', dir, '--server', s.url]);
    expect(hb.stderr).toBe('');
    expect(JSON.parse(hb.stdout)).toMatchObject({ id, status: 'active', liveness: 'online' });
  });

  it('reports errors on stderr with a non-zero exit', async () => {
    const r = await runCli([
      'admin',
      'approve',
      '00000000-0000-4000-8000-000000000000',
      '--server',
      s.url,
      '--token',
      s.adminToken,
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('404 ANS_ERR_NOT_FOUND');
    const bad = await runCli(['admin', 'pending', '--server', s.url, '--token', 'ans_admin_wrong']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('401');
  });
});

describe('shutdown', () => {
  it('exits 0 on SIGTERM, and a restart on the same data dir serves what was acknowledged', async () => {
    const list = await api.get<{ agents: { id: string }[] }>('/v1/agents?limit=1000', s.adminToken);
    expect(await s.stop('SIGTERM')).toBe(0);
    const again = await startServer({ dataDir: s.dataDir });
    try {
      const after = await client(again.url).get<{ agents: { id: string }[] }>(
        '/v1/agents?limit=1000',
        again.adminToken,
      );
      expect(after.body.agents.map((a) => a.id).sort()).toEqual(list.body.agents.map((a) => a.id).sort());
      expect(again.logs.join('\n')).not.toContain('Admin token (shown once');
      expect(await again.stop('SIGINT')).toBe(0);
    } finally {
      await again.stop();
    }
  });
});
