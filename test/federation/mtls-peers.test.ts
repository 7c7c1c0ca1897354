/**
 * Mutual TLS between gateways over https: two real `ans serve` processes with --tls-cert/--tls-key
 * (home.internal Level-1 -> office.internal Level-2). Every gateway-to-gateway connection (the AMSP
 * session and relayed calls) presents the gateway's ANS certificate as TLS client certificate;
 * a connection without it, with an untrusted one, or with another gateway's is refused.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { join } from 'node:path';
import { CompactSign } from 'jose';
import { Agent, getGlobalDispatcher, request, setGlobalDispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client } from '../helpers/api.js';
import { tempDir } from '../helpers/server.js';
import { until } from '../helpers/wait.js';
import { serverCertificate, upstream, type Upstream } from '../gateway/helpers.js';
import { enrol, established, startNet, view, type Enrolled, type Net } from './net.js';

const HOME = 0;
const OFFICE = 1;
const TARGET = 'weather.office.internal';

let net: Net;
let up: Upstream;
let agent1: Enrolled;
let srvPem: string;
const before = getGlobalDispatcher();
const agents: Agent[] = [];

/** A client of the test's own: trusts the server certificate, presents `cert` if given. */
function tlsAgent(cert?: { cert: string; key: string }): Agent {
  const a = new Agent({ connect: { ca: srvPem, ...cert } });
  agents.push(a);
  return a;
}

/** The gateway certificate chain (PEM) and key a node keeps in its data dir. */
function gatewayCert(i: number): { cert: string; key: string; x5c: string[] } {
  const saved = JSON.parse(readFileSync(join(net.servers[i]!.dataDir, 'amsp-gateway.json'), 'utf8')) as {
    keyPem: string;
    x5c: string[];
  };
  const pem = (b: string) => new X509Certificate(Buffer.from(b, 'base64')).toString();
  return { cert: saved.x5c.map(pem).join(''), key: saved.keyPem, x5c: saved.x5c };
}

/** A compact JWS-shaped string whose payload claims `claims` (the signature is junk). */
const claiming = (claims: object) =>
  `eyJhbGciOiJFUzI1NiJ9.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`;

async function post(agent: Agent, url: string, body: unknown, headers: Record<string, string> = {}) {
  const r = await request(url, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: r.statusCode, body: (await r.body.json()) as { code?: string; detail?: string } };
}

beforeAll(async () => {
  const srv = serverCertificate();
  srvPem = srv.certPem;
  setGlobalDispatcher(tlsAgent());
  up = await upstream((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ url: req.url, caller: req.headers['ans-caller'], via: req.headers['ans-via'] }));
  });
  net = await startNet(
    [
      { zone: 'home.internal', role: 'l1', peers: [OFFICE] },
      { zone: 'office.internal', role: 'l2', peers: [] },
    ],
    () => ['--hold-time', '30', '--keepalive', '5'],
    srv,
  );
  await established(net.urls[OFFICE]!, 1);
  await enrol(net.urls[OFFICE]!, net.servers[OFFICE]!.adminToken, 'office.internal', 'weather', {
    description: 'Weather forecasts for the office.',
    endpoints: [{ protocol: 'http', url: `${up.url}/api` }],
  });
  agent1 = await enrol(net.urls[HOME]!, net.servers[HOME]!.adminToken, 'home.internal', 'planner', {
    endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/none' }],
  });
  for (const i of [HOME, OFFICE]) {
    const p = await client(net.urls[i]!).post(
      '/v1/policies',
      { caller: '*.home.internal', target: '*.office.internal', effect: 'allow' },
      net.servers[i]!.adminToken,
    );
    expect(p.status).toBeLessThan(300);
  }
}, 300_000);

afterAll(async () => {
  setGlobalDispatcher(before);
  await net?.stop();
  await up?.close();
  await Promise.all(agents.map((a) => a.close().catch(() => undefined)));
});

describe('mutual TLS between gateways (https next hops)', () => {
  it('runs the AMSP session over HTTPS with the gateway certificates', async () => {
    const home = await view(net.urls[HOME]!);
    expect(home.gateway).toMatch(/^https:/);
    expect(home.peers).toEqual([expect.objectContaining({ uri: net.urls[OFFICE], state: 'established' })]);
    expect((await view(net.urls[OFFICE]!)).peers).toEqual([
      expect.objectContaining({ uri: net.urls[HOME], state: 'established' }),
    ]);
  });

  it('relays a call from home to the office agent over the mutual-TLS hop', async () => {
    const token = await agent1.token();
    // a resolve at the Level-1 subscribes to the name at its Level-2
    await until(async () => {
      const r = await client(net.urls[HOME]!).get<{ results: { fqdn: string }[] }>(
        `/v1/resolve?q=${encodeURIComponent('weather forecasts')}&k=5`,
      );
      return r.body.results.some((x) => x.fqdn === TARGET) ? true : undefined;
    });
    const r = await fetch(`${net.urls[HOME]}/gw/${TARGET}/forecast?d=1`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({
      url: '/api/forecast?d=1',
      caller: agent1.fqdn,
      via: `${net.urls[HOME]}, ${net.urls[OFFICE]}`,
    });
  });

  it('refuses AMSP messages and relayed calls that come without a gateway client certificate', async () => {
    const messages = await post(tlsAgent(), `${net.urls[OFFICE]}/amsp/v1/messages`, {
      envelope: claiming({ iss: net.urls[HOME] }),
    });
    expect(messages).toMatchObject({ status: 401, body: { code: 'FED_ERR_NO_CLIENT_CERT' } });

    const relayed = await request(`${net.urls[OFFICE]}/gw/${TARGET}/x`, {
      dispatcher: tlsAgent(),
      headers: { 'amsp-hop': claiming({ iss: net.urls[HOME] }), 'amsp-caller': claiming({}) },
    });
    expect(relayed.statusCode).toBe(401);
    expect(((await relayed.body.json()) as { code: string }).code).toBe('FED_ERR_NO_CLIENT_CERT');

    // A correctly signed OPEN of the home gateway, but sent without its certificate on the TLS hop.
    const home = gatewayCert(HOME);
    const open = await new CompactSign(
      Buffer.from(
        JSON.stringify({
          type: 'OPEN',
          version: 1,
          gateway: net.urls[HOME],
          zone: 'home.internal',
          role: 'l1',
          holdTime: 30,
          aud: net.urls[OFFICE],
          iat: Math.floor(Date.now() / 1000),
          nonce: 'not-a-real-boot',
        }),
      ),
    )
      .setProtectedHeader({ alg: 'ES256', typ: 'amsp+jws', x5c: home.x5c })
      .sign(createPrivateKey(home.key));
    const opened = await post(tlsAgent(), `${net.urls[OFFICE]}/amsp/v1/open`, { open });
    expect(opened).toMatchObject({ status: 401, body: { code: 'FED_ERR_NO_CLIENT_CERT' } });
    expect(up.seen.filter((s) => s.url === '/api/x')).toHaveLength(0);
  });

  it("refuses an untrusted client certificate and another gateway's certificate", async () => {
    const dir = tempDir('ans-rogue-');
    execFileSync('openssl', [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
      ...['-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=rogue'],
      ...['-addext', 'subjectAltName=DNS:amsp-gateway.home.internal'],
    ]);
    const rogue = { cert: readFileSync(join(dir, 'c.pem'), 'utf8'), key: readFileSync(join(dir, 'k.pem'), 'utf8') };
    const untrusted = await post(tlsAgent(rogue), `${net.urls[OFFICE]}/amsp/v1/messages`, {
      envelope: claiming({ iss: net.urls[HOME] }),
    });
    expect(untrusted).toMatchObject({ status: 403, body: { code: 'FED_ERR_UNTRUSTED_PEER' } });

    // office's own (trusted) gateway certificate is not home's: the TLS client must be the peer itself
    const office = gatewayCert(OFFICE);
    const other = await post(tlsAgent(office), `${net.urls[OFFICE]}/amsp/v1/messages`, {
      envelope: claiming({ iss: net.urls[HOME] }),
    });
    expect(other.status).toBe(403);
    expect(other.body.detail).toContain(`not the gateway certificate of ${net.urls[HOME]}`);
    // the real session is untouched
    expect((await view(net.urls[OFFICE]!)).peers[0]).toMatchObject({ uri: net.urls[HOME], state: 'established' });
  });
});
