/** Outbound TLS: the gateway checks the agent's ANS certificate and its FQDN, whatever address it sits at. */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client } from '../helpers/api.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { enrol, type TestAgent } from './helpers.js';

let s: RunningServer;
let secure: TestAgent;
let impostor: TestAgent;
let caller: TestAgent;
let srv: Server;
let token: string;

beforeAll(async () => {
  s = await startServer();
  const port = await new Promise<number>((r) => {
    const tmp = createServer();
    tmp.listen(0, '127.0.0.1', () => {
      const p = (tmp.address() as AddressInfo).port;
      tmp.close(() => r(p));
    });
  });
  caller = await enrol(s.url, s.adminToken, 'caller', {
    endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/' }],
  });
  secure = await enrol(s.url, s.adminToken, 'secure', {
    endpoints: [{ protocol: 'http', url: `https://127.0.0.1:${port}/api` }],
  });
  impostor = await enrol(s.url, s.adminToken, 'impostor', {
    endpoints: [{ protocol: 'http', url: `https://127.0.0.1:${port}/api` }],
  });
  // The server presents secure's certificate (with its issuing CA): right for secure, wrong for impostor.
  srv = createServer(
    { key: secure.keyPem, cert: `${secure.certPem}\n${secure.chainPem}`, minVersion: 'TLSv1.3' },
    (req, res) => res.end(`tls ok ${req.url}`),
  );
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  token = await caller.token();
});
afterAll(async () => {
  await s?.stop();
  srv?.closeAllConnections();
  await new Promise((r) => srv?.close(r));
});

describe('TLS to agents', () => {
  it('verifies the agent certificate against the ANS CA with the agent FQDN as identity', async () => {
    const r = await client(s.url).req<string>('GET', `/gw/${secure.fqdn}/x`, { bearer: token });
    expect(r.status).toBe(200);
    expect(r.body).toBe('tls ok /api/x');
  });
  it('refuses an endpoint whose certificate names another agent: 502', async () => {
    const r = await client(s.url).req<{ code: string; detail: string }>('GET', `/gw/${impostor.fqdn}/x`, {
      bearer: token,
    });
    expect(r.status).toBe(502);
    expect(r.body.code).toBe('GW_ERR_BAD_UPSTREAM');
    expect(r.body.detail).toMatch(/TLS/);
  });
});
