/**
 * Two real `ans serve` processes: home.internal. (Level-1) peers with car.internal. (Level-2).
 * Each trusts the other's CA root through --peer-ca (the files are written once each CA exists;
 * the trust store re-reads them).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, card } from '../helpers/api.js';
import { opensslCsr } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { until } from '../helpers/wait.js';
import { startServer, tempDir, type RunningServer } from '../helpers/server.js';

interface RoutesView {
  forwarding: { id: string; fqdn: string; nextHop: string; path: string[] }[];
  inapplicable: { id: string }[];
  peers: { uri: string; state: string }[];
}

async function rootOf(url: string): Promise<string> {
  const pem = await (await fetch(`${url}/v1/ca/certificate`)).text();
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)!;
  return `${blocks.at(-1)!}\n`;
}

describe('AMSP between two domains', () => {
  const dir = tempDir('ans-fed-');
  let home: RunningServer;
  let car: RunningServer;
  let carUrl: string;
  const homeCa = join(dir, 'home-root.pem');
  const carCa = join(dir, 'car-root.pem');
  const timers = ['--hold-time', '3', '--keepalive', '1'];

  beforeAll(async () => {
    const carPort = await freePort();
    carUrl = `http://127.0.0.1:${carPort}`;
    home = await startServer({
      args: ['--zone', 'home.internal.', '--role', 'l1', '--peer', carUrl, '--peer-ca', carCa, ...timers],
    });
    writeFileSync(homeCa, await rootOf(home.url));
    car = await startServer({
      args: ['--zone', 'car.internal.', '--role', 'l2', '--peer-ca', homeCa, ...timers, '--http-port', String(carPort)],
    });
    writeFileSync(carCa, await rootOf(carUrl));
  });

  afterAll(async () => {
    await home?.stop();
    await car?.stop();
  });

  it('opens a session, pushes a registration and withdraws it on deregistration', async () => {
    const c = client(carUrl);
    const view = () => c.get<RoutesView>('/amsp/v1/routes').then((r) => r.body);
    await until(async () => ((await view()).peers.some((p) => p.state === 'established') ? true : undefined));

    const h = client(home.url);
    const { csrPem } = opensslCsr('thermostat.home.internal');
    const reg = await h.post<{ id: string }>('/v1/agents', { card: card('thermostat'), csr: csrPem });
    expect(reg.status).toBe(202);
    expect((await h.post(`/v1/agents/${reg.body.id}/approve`, {}, home.adminToken)).status).toBe(200);
    // How fast it propagates is bench/federation's figure; here: that it arrives, pushed.
    const entry = await until(
      async () => (await view()).forwarding.find((f) => f.fqdn === 'thermostat.home.internal'),
      10_000,
    );
    expect(entry.id).toBe(reg.body.id);
    expect(entry.nextHop).toBe(home.url);
    expect(entry.path).toEqual([home.url]);

    // Resolve at car spans domains: home's agent, via home, reached through car's gateway.
    type Answer = { results: { id: string; domain: string; via: string | null; endpoints: { url: string }[] }[] };
    const found = (
      await c.get<Answer>(`/v1/resolve?q=${encodeURIComponent('thermostat agent')}&k=5`)
    ).body.results.find((r) => r.id === reg.body.id);
    expect(found).toMatchObject({ domain: 'home.internal', via: home.url });
    expect(found!.endpoints.every((e) => e.url.startsWith(`${carUrl}/gw/thermostat.home.internal/`))).toBe(true);

    // Level-1 never learns what it did not ask for; its own agent is local.
    const homeView = (await h.get<RoutesView & { local: { fqdn: string }[] }>('/amsp/v1/routes')).body;
    expect(homeView.local.map((l) => l.fqdn)).toContain('thermostat.home.internal');

    expect((await h.del(`/v1/agents/${reg.body.id}`, home.adminToken)).status).toBeLessThan(300);
    await until(async () => ((await view()).forwarding.some((f) => f.id === reg.body.id) ? undefined : true), 5000);
  });

  it('rejects an OPEN that does not chain to a trusted root', async () => {
    const r = await client(carUrl).post('/amsp/v1/open', { open: 'e30.e30.sig' });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
  });

  it('withdraws routes learned from a peer killed with SIGKILL after the hold time', async () => {
    const h = client(home.url);
    const { csrPem } = opensslCsr('lamp.home.internal');
    const reg = await h.post<{ id: string }>('/v1/agents', { card: card('lamp'), csr: csrPem });
    await h.post(`/v1/agents/${reg.body.id}/approve`, {}, home.adminToken);
    const c = client(carUrl);
    const view = () => c.get<RoutesView>('/amsp/v1/routes').then((r) => r.body);
    await until(async () => (await view()).forwarding.find((f) => f.id === reg.body.id), 5000);
    home.proc.kill('SIGKILL');
    await until(async () => ((await view()).forwarding.some((f) => f.id === reg.body.id) ? undefined : true), 20_000);
    expect((await view()).inapplicable.map((r) => r.id)).toContain(reg.body.id);
  });
});
