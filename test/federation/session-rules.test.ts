/**
 * Session rules through real `ans serve` processes: home (Level-1, peer car), car (Level-2) and
 * office (Level-2, dials car and, wrongly, home).
 * - A Level-1 accepts OPEN only from its configured --peer s (403 FED_ERR_NOT_A_PEER).
 * - A clean shutdown sends NOTIFICATION CEASE first: the peers drop what they learned from it at
 *   once (not marked inapplicable after a hold time), also where it was learned second-hand.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/wait.js';
import { enrol, established, startNet, view, type Enrolled, type Net } from './net.js';

const HOME = 0;
const CAR = 1;
const OFFICE = 2;

let net: Net;
let thermo: Enrolled;

beforeAll(async () => {
  // A hold time far longer than the test: anything dropped was dropped by CEASE.
  net = await startNet(
    [
      { zone: 'home.internal', role: 'l1', peers: [CAR] },
      { zone: 'car.internal', role: 'l2', peers: [] },
      { zone: 'office.internal', role: 'l2', peers: [CAR, HOME] },
    ],
    () => ['--hold-time', '300', '--keepalive', '10'],
  );
  await established(net.urls[CAR]!, 2);
  thermo = await enrol(net.urls[HOME]!, net.servers[HOME]!.adminToken, 'home.internal', 'thermo');
}, 300_000);

afterAll(async () => {
  await net?.stop();
});

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

  it('a clean shutdown sends CEASE: its routes go at once, everywhere, without a hold time', async () => {
    for (const i of [CAR, OFFICE])
      await until(async () =>
        (await view(net.urls[i]!)).forwarding.some((f) => f.id === thermo.id) ? true : undefined,
      );
    expect(await net.servers[HOME]!.stop('SIGTERM')).toBe(0);
    for (const i of [CAR, OFFICE]) {
      await until(async () =>
        (await view(net.urls[i]!)).forwarding.some((f) => f.id === thermo.id) ? undefined : true,
      );
      const v = await view(net.urls[i]!);
      expect(v.inapplicable.some((r) => r.id === thermo.id)).toBe(false);
    }
    expect((await view(net.urls[CAR]!)).peers.map((p) => p.uri)).toEqual([net.urls[OFFICE]]);
    expect(net.servers[CAR]!.logs.some((l) => l.includes('"code":"CEASE"'))).toBe(true);
  });
});
