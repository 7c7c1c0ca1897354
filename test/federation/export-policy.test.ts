/**
 * Export policy and subscription-rate flags, federation metrics and session rules through real
 * `ans serve` processes: home (Level-1) -> car (Level-2) <- office (Level-2, which also dials
 * home, wrongly).
 * - home: `--export-deny-tag private --export-redact description` (its own records);
 * - car: `--export-deny-domain home.internal` (what it passes on to office) and
 *   `--subscription-rate 3` (topics a peer may add per minute);
 * - a Level-1 accepts OPEN only from its configured --peer s (403 FED_ERR_NOT_A_PEER);
 * - a clean shutdown sends NOTIFICATION CEASE first: the peer drops what it learned from it at
 *   once (not marked inapplicable after a hold time).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client } from '../helpers/api.js';
import { until } from '../helpers/wait.js';
import { enrol, established, startNet, view, type Enrolled, type Net } from './net.js';

const HOME = 0;
const CAR = 1;
const OFFICE = 2;

let net: Net;
let thermo: Enrolled;
let diary: Enrolled;
let printer: Enrolled;

type Answer = { results: { id: string }[] };
const resolve = (i: number, q: string) =>
  client(net.urls[i]!)
    .get<Answer>(`/v1/resolve?q=${encodeURIComponent(q)}&k=10`)
    .then((r) => r.body.results.map((x) => x.id));
const forwarded = async (i: number) => (await view(net.urls[i]!)).forwarding.map((f) => f.id);

beforeAll(async () => {
  net = await startNet(
    [
      { zone: 'home.internal', role: 'l1', peers: [CAR] },
      { zone: 'car.internal', role: 'l2', peers: [] },
      { zone: 'office.internal', role: 'l2', peers: [CAR, HOME] },
    ],
    (i) =>
      ['--hold-time', '30', '--keepalive', '5'].concat(
        i === HOME ? ['--export-deny-tag', 'private', '--export-redact', 'description'] : [],
        i === CAR ? ['--export-deny-domain', 'home.internal', '--subscription-rate', '3'] : [],
      ),
  );
  await established(net.urls[CAR]!, 2);
  const home = net.servers[HOME]!.adminToken;
  diary = await enrol(net.urls[HOME]!, home, 'home.internal', 'diary', {
    skills: [{ id: 'notes', name: 'Notes', description: 'Keeps notes', tags: ['private'] }],
  });
  thermo = await enrol(net.urls[HOME]!, home, 'home.internal', 'thermo', {
    description: 'Keeps the zephyrine heating schedule.',
  });
  printer = await enrol(net.urls[CAR]!, net.servers[CAR]!.adminToken, 'car.internal', 'printer');
}, 300_000);

afterAll(async () => {
  await net?.stop();
});

describe('export policy flags', () => {
  it('--export-deny-tag keeps a tagged agent at home; the others go out', async () => {
    await until(async () => ((await forwarded(CAR)).includes(thermo.id) ? true : undefined));
    // diary was registered before thermo: had it been sent, it would be there first
    expect(await forwarded(CAR)).not.toContain(diary.id);
  });

  it('--export-redact description: the record leaves without its description', async () => {
    expect(await resolve(CAR, 'thermo')).toContain(thermo.id);
    expect(await resolve(CAR, 'zephyrine')).not.toContain(thermo.id);
  });

  it("--export-deny-domain at a Level-2: it does not pass that domain's records on", async () => {
    await until(async () => ((await forwarded(OFFICE)).includes(printer.id) ? true : undefined));
    // thermo reached car before printer was registered, so it would have reached office first
    expect(await forwarded(OFFICE)).not.toContain(thermo.id);
  });
});

describe('--subscription-rate', () => {
  it('refuses a SUBSCRIBE beyond the per-minute budget with RATE_LIMITED; the session stays', async () => {
    const homeAtCar = async () => (await view(net.urls[CAR]!)).peers.find((p) => p.uri === net.urls[HOME])!;
    // a resolve at the Level-1 subscribes its words at the Level-2: four topics, over a budget of 3
    await resolve(HOME, 'alpha bravo charlie delta');
    await until(async () =>
      net.servers[CAR]!.logs.some((l) => l.includes('AMSP subscription rate exceeded')) ? true : undefined,
    );
    expect((await homeAtCar()).subscriptions).toEqual([]);
    // two topics fit
    await resolve(HOME, 'echo foxtrot');
    await until(async () => ((await homeAtCar()).subscriptions.length === 2 ? true : undefined));
    expect((await homeAtCar()).subscriptions.sort()).toEqual(['text:echo', 'text:foxtrot']);
    expect((await homeAtCar()).state).toBe('established');
    expect(net.servers[HOME]!.logs.some((l) => l.includes('"code":"RATE_LIMITED"'))).toBe(true);
  });
});

describe('federation metrics', () => {
  it('exports sessions, routes, per-peer traffic and events on /metrics', async () => {
    const text = await (await fetch(`${net.urls[CAR]}/metrics`)).text();
    const value = (line: string) =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith(`${line} `))
          ?.split(' ')[1],
      );
    expect(value('ans_amsp_sessions{state="established"}')).toBe(2);
    expect(value('ans_amsp_routes{state="best"}')).toBe((await view(net.urls[CAR]!)).forwarding.length);
    expect(value(`ans_amsp_peer_updates{peer="${net.urls[HOME]}",direction="in"}`)).toBeGreaterThanOrEqual(1);
    expect(value(`ans_amsp_peer_messages{peer="${net.urls[OFFICE]}",direction="out"}`)).toBeGreaterThanOrEqual(1);
    expect(value(`ans_amsp_peer_bytes{peer="${net.urls[HOME]}",direction="in"}`)).toBeGreaterThan(0);
    expect(value('ans_amsp_events{event="badUpdates"}')).toBe(0);
  });
});

// Last: it shuts home down.
describe('AMSP session rules', () => {
  it('a Level-1 refuses an OPEN from a gateway that is not one of its --peer s', async () => {
    await until(async () =>
      net.servers[OFFICE]!.logs.some(
        (l) => l.includes('AMSP dial failed') && l.includes('403') && l.includes('not a configured peer'),
      )
        ? true
        : undefined,
    );
    expect((await view(net.urls[HOME]!)).peers.map((p) => p.uri)).toEqual([net.urls[CAR]]);
    expect((await view(net.urls[OFFICE]!)).peers.map((p) => p.uri)).toEqual([net.urls[CAR]]);
  });

  it('a clean shutdown sends CEASE: its routes go at once, without a hold time', async () => {
    expect((await view(net.urls[CAR]!)).forwarding.some((f) => f.id === thermo.id)).toBe(true);
    expect(await net.servers[HOME]!.stop('SIGTERM')).toBe(0);
    await until(async () =>
      (await view(net.urls[CAR]!)).forwarding.some((f) => f.id === thermo.id) ? undefined : true,
    );
    const v = await view(net.urls[CAR]!);
    expect(v.inapplicable.some((r) => r.id === thermo.id)).toBe(false);
    expect(v.peers.map((p) => p.uri)).toEqual([net.urls[OFFICE]]);
    expect(net.servers[CAR]!.logs.some((l) => l.includes('"code":"CEASE"'))).toBe(true);
  });
});
