/**
 * Mutual TLS callers: over HTTPS (`--tls-cert/--tls-key`) an agent may present its ANS
 * certificate instead of a JWT. Certificates come from the real register/approve flow; the
 * clients are undici and curl.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, WebSocket, getGlobalDispatcher, request, setGlobalDispatcher, type Dispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client } from '../helpers/api.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import {
  closed,
  enrol,
  eventually,
  next,
  serverCertificate,
  upstream,
  wsServer,
  type TestAgent,
  type Upstream,
} from './helpers.js';

let s: RunningServer;
let base: string;
let api: ReturnType<typeof client>;
let up: Upstream;
let caller: TestAgent;
let target: TestAgent;
let dir: string;
let serverPem: string;
let srv: ReturnType<typeof serverCertificate>;
let foreign: { certPem: string; keyPem: string };
const before = getGlobalDispatcher();
const agents: Agent[] = [];

const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });

/** A dispatcher trusting the test server's certificate, presenting `cert`/`key` when given. */
function tlsAgent(cert?: string, key?: string): Agent {
  const a = new Agent({ connect: { ca: serverPem, ...(cert && key ? { cert, key } : {}) } });
  agents.push(a);
  return a;
}

async function call(
  d: Dispatcher,
  path: string,
  init: { method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: string } = {},
) {
  const r = await request(`${base}${path}`, {
    dispatcher: d,
    method: init.method ?? 'GET',
    headers: init.headers ?? {},
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  const text = await r.body.text();
  return { status: r.statusCode, text, json: () => JSON.parse(text) as { code?: string; detail?: string } };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ans-mtls-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  srv = serverCertificate();
  serverPem = srv.certPem;
  // Another CA, and a client certificate from it that names an agent of our zone.
  openssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    join(dir, 'other-ca.key'),
    '-out',
    join(dir, 'other-ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=Other CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
  );
  openssl(
    'req',
    ...ec,
    '-keyout',
    join(dir, 'forged.key'),
    '-out',
    join(dir, 'forged.csr'),
    '-subj',
    '/CN=caller.agents.internal',
    '-addext',
    'subjectAltName=DNS:caller.agents.internal',
  );
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:caller.agents.internal\nextendedKeyUsage=clientAuth\n');
  openssl(
    'x509',
    '-req',
    '-in',
    join(dir, 'forged.csr'),
    '-CA',
    join(dir, 'other-ca.pem'),
    '-CAkey',
    join(dir, 'other-ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    join(dir, 'ext.cnf'),
    '-out',
    join(dir, 'forged.pem'),
  );
  foreign = {
    certPem: `${readFileSync(join(dir, 'forged.pem'), 'utf8')}${readFileSync(join(dir, 'other-ca.pem'), 'utf8')}`,
    keyPem: readFileSync(join(dir, 'forged.key'), 'utf8'),
  };

  s = await startServer({ args: ['--tls-cert', srv.certFile, '--tls-key', srv.keyFile] });
  base = `https://127.0.0.1:${s.httpPort}`;
  // The registry API calls (global fetch) trust the test server's certificate.
  setGlobalDispatcher(tlsAgent());
  api = client(base);
  up = await upstream((req, res, body) =>
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ url: req.url, caller: req.headers['ans-caller'] ?? null, body })),
  );
  caller = await enrol(base, s.adminToken, 'caller', { endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/' }] });
  target = await enrol(base, s.adminToken, 'target', {
    endpoints: [
      { protocol: 'http', url: `${up.url}/api` },
      { protocol: 'a2a', url: `${up.url}/a2a` },
    ],
  });
});
afterAll(async () => {
  setGlobalDispatcher(before);
  await Promise.all(agents.map((a) => a.close().catch(() => undefined)));
  await s?.stop();
  await up?.close();
});

describe('mutual TLS callers', () => {
  it('authenticates an ANS client certificate as its agent: forwarded with ANS-Caller', async () => {
    const d = tlsAgent(`${caller.certPem}\n${caller.chainPem}`, caller.keyPem);
    const r = await call(d, `/gw/${target.fqdn}/x?q=1`);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toMatchObject({ url: '/api/x?q=1', caller: caller.fqdn });
    const seen = up.seen.at(-1)!;
    expect(seen.headers['ans-caller-id']).toBe(caller.id);
    expect(seen.headers['authorization']).toBeUndefined();
    // Again on the same connection (verified once per connection), and with a body.
    const p = await call(d, `/gw/${target.fqdn}/y`, { method: 'POST', body: 'hello' });
    expect(p.status).toBe(200);
    expect(JSON.parse(p.text)).toMatchObject({ url: '/api/y', caller: caller.fqdn, body: 'hello' });
  });

  it('takes the leaf certificate alone (the issuing CA is found by signature)', async () => {
    const r = await call(tlsAgent(caller.certPem, caller.keyPem), `/gw/${target.fqdn}/leaf`);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toMatchObject({ caller: caller.fqdn });
  });

  it('works with curl --cert', async () => {
    writeFileSync(join(dir, 'caller.pem'), `${caller.certPem}\n${caller.chainPem}`);
    writeFileSync(join(dir, 'caller.key'), caller.keyPem);
    const out = await new Promise<string>((res, rej) =>
      execFile(
        'curl',
        [
          '-sS',
          '--cacert',
          srv.certFile,
          '--cert',
          join(dir, 'caller.pem'),
          '--key',
          join(dir, 'caller.key'),
          '-w',
          '\n%{http_code}',
          `${base}/gw/${target.fqdn}/curl`,
        ],
        (e, stdout, stderr) => (e ? rej(new Error(`${e.message}\n${stderr}`)) : res(stdout)),
      ),
    );
    const [body, code] = out.split('\n');
    expect(code).toBe('200');
    expect(JSON.parse(body!)).toMatchObject({ url: '/api/curl', caller: caller.fqdn });
  });

  it('routes POST /a2a for a certificate caller', async () => {
    const r = await call(tlsAgent(`${caller.certPem}\n${caller.chainPem}`, caller.keyPem), '/a2a', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'message/send',
        params: { metadata: { skillId: 'target.main' }, message: { role: 'user', parts: [] } },
      }),
    });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toMatchObject({ url: '/a2a', caller: caller.fqdn });
  });

  it('authenticates a WebSocket (wss) by its client certificate', async () => {
    const ws = await wsServer();
    try {
      const chat = await enrol(base, s.adminToken, 'chat', {
        endpoints: [{ protocol: 'http', url: `http://127.0.0.1:${ws.port}/ws` }],
      });
      const sock = new WebSocket(`wss://127.0.0.1:${s.httpPort}/gw/${chat.fqdn}/room`, {
        dispatcher: tlsAgent(`${caller.certPem}\n${caller.chainPem}`, caller.keyPem),
      });
      await new Promise((res, rej) => {
        sock.addEventListener('open', res);
        sock.addEventListener('error', () => rej(new Error('the WebSocket did not open')));
      });
      sock.send('over tls');
      expect(await next(sock)).toBe('echo:over tls');
      expect(ws.handshakes.at(-1)!.headers['ans-caller']).toBe(caller.fqdn);
      const done = closed(sock);
      sock.close();
      expect((await done).wasClean).toBe(true);
    } finally {
      await ws.close();
    }
  });

  it('refuses a certificate from another CA: 401', async () => {
    const r = await call(tlsAgent(foreign.certPem, foreign.keyPem), `/gw/${target.fqdn}/x`);
    expect(r.status).toBe(401);
    expect(r.json().code).toBe('GW_ERR_BAD_CLIENT_CERT');
  });

  it('refuses a call with neither certificate nor token: 401', async () => {
    const r = await call(tlsAgent(), `/gw/${target.fqdn}/x`);
    expect(r.status).toBe(401);
    expect(r.json().code).toBe('GW_ERR_NO_CREDENTIAL');
  });

  it('lets a bearer token decide when both are sent', async () => {
    const t = await caller.token();
    const ok = await call(tlsAgent(foreign.certPem, foreign.keyPem), `/gw/${target.fqdn}/both`, {
      headers: { authorization: `Bearer ${t}` },
    });
    expect(ok.status).toBe(200);
    const bad = await call(tlsAgent(`${caller.certPem}\n${caller.chainPem}`, caller.keyPem), `/gw/${target.fqdn}/x`, {
      headers: { authorization: 'Bearer not-a-jwt' },
    });
    expect(bad.status).toBe(401);
    expect(bad.json().code).toBe('GW_ERR_BAD_CREDENTIAL');
  });

  it('applies policy to certificate callers', async () => {
    const other = await enrol(base, s.adminToken, 'outsider', {
      endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/' }],
    });
    const p = await api.post<{ id: string }>(
      '/v1/policies',
      { caller: other.fqdn, target: target.fqdn, effect: 'deny' },
      s.adminToken,
    );
    expect(p.status).toBe(201);
    const d = tlsAgent(`${other.certPem}\n${other.chainPem}`, other.keyPem);
    const r = await eventually(async () => {
      const x = await call(d, `/gw/${target.fqdn}/x`);
      return x.status === 403 ? x : undefined;
    });
    expect(r!.json().code).toBe('GW_ERR_DENIED');
  });

  it('refuses a revoked certificate, on an open connection and a new one: 403', async () => {
    const rv = await enrol(base, s.adminToken, 'revokee', {
      endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/' }],
    });
    const pem = `${rv.certPem}\n${rv.chainPem}`;
    const d = tlsAgent(pem, rv.keyPem);
    expect((await call(d, `/gw/${target.fqdn}/x`)).status).toBe(200); // verified, kept for the connection
    const r = await api.post(`/v1/agents/${rv.id}/revoke`, { reason: 'keyCompromise' }, s.adminToken);
    expect(r.status).toBe(200);
    await eventually(async () => (await call(d, `/gw/${target.fqdn}/x`)).status === 403, 10_000, 20);
    const again = await call(d, `/gw/${target.fqdn}/x`);
    expect(again.json().code).toBe('GW_ERR_CLIENT_CERT_REFUSED');
    const fresh = await call(tlsAgent(pem, rv.keyPem), `/gw/${target.fqdn}/x`);
    expect(fresh.status).toBe(403);
    expect(fresh.json()).toMatchObject({ code: 'GW_ERR_CLIENT_CERT_REFUSED' });
    expect(fresh.json().detail).toMatch(/revoked/);
  });
});
