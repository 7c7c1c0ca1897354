import { describe, expect, it } from 'vitest';
import { matchesTopic, passesExport, redact, type ExportPolicy } from '../../src/federation/policy.js';
import { exportPath } from '../../src/federation/export.js';
import { rec } from './fixtures.js';

describe('export policy', () => {
  it.each<{ policy: ExportPolicy; ok: boolean }>([
    { policy: {}, ok: true },
    { policy: { allowDomains: ['car.internal'] }, ok: true },
    { policy: { allowDomains: ['home.internal'] }, ok: false },
    { policy: { allowDomains: ['*.internal'] }, ok: true },
    { policy: { allowDomains: ['*'], denyDomains: ['car.internal.'] }, ok: false },
    { policy: { allowTags: ['weather'] }, ok: true },
    { policy: { allowTags: ['music'] }, ok: false },
    { policy: { denyTags: ['WEATHER'] }, ok: false },
  ])('$policy -> $ok', ({ policy, ok }) => expect(passesExport(rec(), policy)).toBe(ok));

  it('redacts description and skills but keeps tags for filtering', () => {
    const r = redact(rec(), ['description', 'skills']);
    expect(r.description).toBeUndefined();
    expect(r.skills).toBeUndefined();
    expect(r.tags).toEqual(['weather']);
  });

  it.each([
    ['*', true],
    ['tag:weather', true],
    ['tag:music', false],
    ['domain:car.internal', true],
    ['domain:*.internal', true],
    ['text:forecast', true],
    ['text:rain', true],
    ['text:snow', false],
    ['weather.car.internal.', true],
    ['a1', true],
  ])('topic %s -> %s', (t, ok) => expect(matchesTopic(rec(), t)).toBe(ok));
});

describe('export decision (hierarchy + split horizon + subscriptions)', () => {
  const L1 = { uri: 'http://l1.example', role: 'l1' as const };
  const L2 = { uri: 'http://l2.example', role: 'l2' as const };
  const peerL2 = { uri: 'http://p2.example', role: 'l2' as const, topics: new Set<string>() };
  const peerL1 = { uri: 'http://p1.example', role: 'l1' as const, topics: new Set<string>() };
  const subscribedL1 = { ...peerL1, topics: new Set(['tag:weather']) };
  const learned = { kind: 'learned' as const, peer: 'http://o.example', path: ['http://o.example'] };
  it.each([
    {
      name: 'L1 pushes own agents to its L2',
      self: L1,
      target: peerL2,
      src: { kind: 'local' as const },
      out: [L1.uri],
    },
    { name: 'L1 never re-advertises', self: L1, target: peerL2, src: learned, out: null },
    {
      name: 'L2 prepends itself for L2 peers',
      self: L2,
      target: peerL2,
      src: learned,
      out: [L2.uri, 'http://o.example'],
    },
    { name: 'L2 sends nothing unasked to an L1', self: L2, target: peerL1, src: learned, out: null },
    {
      name: 'L2 sends subscribed records to an L1',
      self: L2,
      target: subscribedL1,
      src: learned,
      out: [L2.uri, 'http://o.example'],
    },
    { name: 'split horizon', self: L2, target: { ...peerL2, uri: 'http://o.example' }, src: learned, out: null },
  ])('$name', ({ self, target, src, out }) => expect(exportPath(self, target, rec(), src)).toEqual(out));

  it('the send-filter applies before anything else', () => {
    expect(exportPath(L2, peerL2, rec(), { kind: 'local' }, { denyDomains: ['car.internal'] })).toBeNull();
  });
});
