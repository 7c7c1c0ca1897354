/**
 * On-demand subscriptions with real processes: a Level-1 (home) learns a Level-2's (car) agents
 * only when a local resolve asks for them; a subscription nobody uses expires (five hold times)
 * and the Level-2 withdraws what matched only it; one kept in use by calls through the gateway
 * stays.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client } from '../helpers/api.js';
import { until } from '../helpers/wait.js';
import { upstream, type Upstream } from '../gateway/helpers.js';
import { enrol, established, startNet, view, type Enrolled, type Net } from './net.js';

const HOME = 0;
const CAR = 1;
let net: Net;
let up: Upstream;
let caller: Enrolled;
let weather: Enrolled;
let clock: Enrolled;

beforeAll(async () => {
  up = await upstream((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('tick'));
  net = await startNet([
    { zone: 'home.internal', role: 'l1', peers: [CAR] },
    { zone: 'car.internal', role: 'l2', peers: [] },
  ]);
  await established(net.urls[HOME]!, 1);
  const ep = { endpoints: [{ protocol: 'http' as const, url: `${up.url}/x` }] };
  weather = await enrol(net.urls[CAR]!, net.servers[CAR]!.adminToken, 'car.internal', 'weather', ep);
  clock = await enrol(net.urls[CAR]!, net.servers[CAR]!.adminToken, 'car.internal', 'clock', ep);
  caller = await enrol(net.urls[HOME]!, net.servers[HOME]!.adminToken, 'home.internal', 'me', ep);
  const allow = { caller: '*.home.internal', target: '*.car.internal', effect: 'allow' };
  for (const i of [HOME, CAR])
    expect((await client(net.urls[i]!).post('/v1/policies', allow, net.servers[i]!.adminToken)).status).toBeLessThan(
      300,
    );
}, 400_000);

afterAll(async () => {
  await net?.stop();
  await up?.close();
});

const learned = async (id: string) => (await view(net.urls[HOME]!)).forwarding.some((f) => f.id === id);

describe('on-demand subscriptions', () => {
  it('pulls on a resolve miss, keeps what is used, expires what is not', async () => {
    expect(await learned(weather.id)).toBe(false); // a Level-1 gets nothing it did not ask for
    const resolve = (q: string) => client(net.urls[HOME]!).get(`/v1/resolve?q=${encodeURIComponent(q)}`);
    await resolve('weather');
    await resolve('clock');
    await until(async () => ((await learned(weather.id)) && (await learned(clock.id)) ? true : undefined));
    const carView = await view(net.urls[CAR]!);
    expect(carView.peers.find((p) => p.uri === net.urls[HOME])!.subscriptions).toEqual(
      expect.arrayContaining(['text:weather', 'text:clock']),
    );
    // Calls keep clock's route alive; nobody asks for weather again.
    const token = await caller.token();
    let calls = 0;
    await until(async () => {
      const r = await fetch(`${net.urls[HOME]}/gw/${clock.fqdn}/now`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(r.status).toBe(200);
      await r.arrayBuffer();
      calls++;
      await new Promise((res) => setTimeout(res, 1000));
      return (await learned(weather.id)) ? undefined : true;
    }, 90_000);
    expect(calls).toBeGreaterThan(1);
    expect(await learned(clock.id)).toBe(true);
    const home = (await view(net.urls[HOME]!)) as unknown as { subscribed: string[] };
    expect(home.subscribed).toContain(clock.fqdn);
    expect(home.subscribed).not.toContain('text:weather');
    const subs = (await view(net.urls[CAR]!)).peers.find((p) => p.uri === net.urls[HOME])!.subscriptions;
    expect(subs).not.toContain('text:weather');
    expect(subs).toContain(clock.fqdn);
  }, 240_000);
});
