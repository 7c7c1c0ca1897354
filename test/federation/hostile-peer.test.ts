/**
 * A misbehaving peer against a real `ans serve` (V, Level-2). The peer is played by the test
 * with the real gateway identity of a stopped `ans serve` (E, whose CA V trusts): its URI, key
 * and certificate chain; a sink listens on E's port for what V sends back. Unsigned, forged and
 * tampered records, a PATH holding V's own URI, a forged or replayed envelope and a flood of
 * subscriptions are each refused, counted and logged; the session and the process survive.
 */
import { createServer, type Server } from 'node:http';
import { createHash, generateKeyPairSync, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CompactSign } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/wait.js';
import { startNet, view, type Net } from './net.js';

const V = 0;
const E = 1;
let net: Net;
let sink: Server;
let key: KeyObject;
let x5c: string[];
const received: { type: string; code?: string }[] = [];
let n = 0;

const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
const sign = (payload: unknown, k: KeyObject, chain: boolean) =>
  new CompactSign(enc(payload))
    .setProtectedHeader(chain ? { alg: 'ES256', typ: 'amsp+jws', x5c } : { alg: 'ES256', typ: 'amsp+jws' })
    .sign(k);
const now = () => Math.floor(Date.now() / 1000);
const SID = 'hostile-boot-1';

function record(label: string, domain = 'evil.internal') {
  return {
    id: `id-${label}`,
    fqdn: `${label}.${domain}`,
    domain,
    name: `${label} agent`,
    version: '1.0.0',
    tags: ['evil'],
    protocols: ['http'],
    endpoints: [{ protocol: 'http', url: `${net.urls[E]}/gw/${label}.${domain}/` }],
    origin: net.urls[E]!,
    seq: 1,
  };
}

async function envelope(messages: unknown[], opts: { n?: number; k?: KeyObject } = {}) {
  const body = {
    envelope: await sign(
      { iss: net.urls[E], aud: net.urls[V], sid: SID, n: opts.n ?? ++n, iat: now(), messages },
      opts.k ?? key,
      false,
    ),
  };
  return fetch(`${net.urls[V]}/amsp/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

beforeAll(async () => {
  // V waits a minute for the (test-played) peer's keepalives, so the test needs to send none.
  net = await startNet(
    [
      { zone: 'victim.internal', role: 'l2', peers: [] },
      { zone: 'evil.internal', role: 'l2', peers: [] },
    ],
    (i) => (i === V ? ['--hold-time', '60'] : []),
  );
  const id = JSON.parse(readFileSync(join(net.servers[E]!.dataDir, 'amsp-gateway.json'), 'utf8')) as {
    keyPem: string;
    x5c: string[];
  };
  key = createPrivateKey(id.keyPem);
  x5c = id.x5c;
  await net.servers[E]!.stop();
  sink = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const jws = (JSON.parse(Buffer.concat(chunks).toString()) as { envelope: string }).envelope;
        const p = JSON.parse(Buffer.from(jws.split('.')[1]!, 'base64url').toString()) as {
          messages: { type: string }[];
        };
        received.push(...p.messages);
      } catch {
        /* not an envelope */
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => sink.listen(Number(new URL(net.urls[E]!).port), '127.0.0.1', r));
  expect((await openAs(SID)).status).toBe(200);
}, 400_000);

/** OPEN as E with the given boot id (nonce). */
async function openAs(nonce: string) {
  const open = await sign(
    {
      type: 'OPEN',
      version: 1,
      gateway: net.urls[E],
      zone: 'evil.internal',
      role: 'l2',
      holdTime: 90,
      aud: net.urls[V],
      iat: now(),
      nonce,
    },
    key,
    true,
  );
  return fetch(`${net.urls[V]}/amsp/v1/open`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ open }),
  });
}

afterAll(async () => {
  await net?.stop();
  await new Promise((r) => sink?.close(r));
});

describe('a hostile or broken peer', () => {
  it('has its bad updates refused one by one while the good one is installed', async () => {
    const good = await sign(record('good'), key, true);
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify(record('unsigned'))).toString('base64url')}.`;
    const forged = await sign(record('forged', 'office.internal'), key, true); // outside E's zone
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const wrongKey = await sign(record('wrongkey'), other, true); // x5c of E, signature of another key
    const parts = (await sign(record('tampered'), key, true)).split('.');
    const tampered = `${parts[0]}.${Buffer.from(JSON.stringify(record('tampered2'))).toString('base64url')}.${parts[2]}`;
    const before = (await view(net.urls[V]!)).stats;
    const r = await envelope([
      { type: 'UPDATE', path: [net.urls[E]], record: unsigned },
      { type: 'UPDATE', path: [net.urls[E]], record: forged },
      { type: 'UPDATE', path: [net.urls[E]], record: wrongKey },
      { type: 'UPDATE', path: [net.urls[E]], record: tampered },
      { type: 'UPDATE', path: ['http://127.0.0.1:1'], record: good }, // PATH not starting at the sender
      { type: 'UPDATE', path: [net.urls[E], net.urls[V]], record: good }, // PATH holds V: a loop
      { type: 'UPDATE', path: [net.urls[E]], record: good },
    ]);
    expect(r.status).toBe(200);
    const v = await view(net.urls[V]!);
    expect(v.forwarding.map((f) => f.fqdn)).toEqual(['good.evil.internal']);
    expect(v.stats.badUpdates! - before.badUpdates!).toBe(5);
    expect(v.stats.loopsDropped! - before.loopsDropped!).toBe(1);
    expect(v.peers.find((p) => p.uri === net.urls[E])?.state).toBe('established');
    await until(async () =>
      net.servers[V]!.logs.filter((l) => l.includes('AMSP UPDATE rejected')).length >= 5 ? true : undefined,
    );
  });

  it('refuses a forged or replayed envelope and installs nothing from it', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const bad = await sign(record('sneaky'), key, true);
    const forged = await envelope([{ type: 'UPDATE', path: [net.urls[E]], record: bad }], { k: other });
    expect(forged.status).toBe(403);
    const replay = await envelope([{ type: 'UPDATE', path: [net.urls[E]], record: bad }], { n: 1 });
    expect(replay.status).toBe(400);
    const garbage = await fetch(`${net.urls[V]}/amsp/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ envelope: 'not.a.jws-at-all' }),
    });
    expect(garbage.status).toBeGreaterThanOrEqual(400);
    expect(garbage.status).toBeLessThan(500);
    expect((await view(net.urls[V]!)).forwarding.some((f) => f.fqdn === 'sneaky.evil.internal')).toBe(false);
  });

  it('installs a record naming its chain (x5t#S256) only after a valid CHAIN for it', async () => {
    const thumb = createHash('sha256').update(Buffer.from(x5c[0]!, 'base64')).digest('base64url');
    const byRef = (label: string) =>
      new CompactSign(enc(record(label)))
        .setProtectedHeader({ alg: 'ES256', typ: 'amsp+jws', 'x5t#S256': thumb })
        .sign(key);
    const before = (await view(net.urls[V]!)).stats;
    const fqdns = async () => (await view(net.urls[V]!)).forwarding.map((f) => f.fqdn);
    // no CHAIN yet: refused; a CHAIN that is not a chain to a trusted root: refused
    await envelope([{ type: 'UPDATE', path: [net.urls[E]], record: await byRef('early') }]);
    const selfSigned = [x5c[0]!, x5c[0]!];
    await envelope([{ type: 'CHAIN', x5c: selfSigned }]);
    expect(await fqdns()).not.toContain('early.evil.internal');
    expect((await view(net.urls[V]!)).stats.badUpdates! - before.badUpdates!).toBe(2);
    expect(net.servers[V]!.logs.some((l) => l.includes('AMSP CHAIN rejected'))).toBe(true);
    // the real chain once, then records by reference
    await envelope([
      { type: 'CHAIN', x5c },
      { type: 'UPDATE', path: [net.urls[E]], record: await byRef('late') },
      { type: 'UPDATE', path: [net.urls[E]], record: await byRef('later') },
    ]);
    expect(await fqdns()).toEqual(expect.arrayContaining(['late.evil.internal', 'later.evil.internal']));
    expect((await view(net.urls[V]!)).peers.find((p) => p.uri === net.urls[E])?.state).toBe('established');
  });

  it('answers a flood of subscriptions with RATE_LIMITED and keeps the session', async () => {
    const topics = (k: number) => Array.from({ length: 200 }, (_, i) => `text:w${k}x${i}`);
    expect((await envelope([{ type: 'SUBSCRIBE', topics: topics(1) }])).status).toBe(200);
    expect((await envelope([{ type: 'SUBSCRIBE', topics: topics(2) }])).status).toBe(200);
    await until(async () =>
      received.some((m) => m.type === 'NOTIFICATION' && m.code === 'RATE_LIMITED') ? true : undefined,
    );
    const v = await view(net.urls[V]!);
    const peer = v.peers.find((p) => p.uri === net.urls[E])!;
    expect(peer.state).toBe('established');
    expect(peer.subscriptions.length).toBe(200);
    expect(net.servers[V]!.logs.some((l) => l.includes('AMSP subscription limit reached'))).toBe(true);
    expect((await fetch(`${net.urls[V]}/healthz`)).status).toBe(200);
  });

  it('keeps subscriptions across a re-OPEN of the same boot, drops them for a new boot', async () => {
    const subs = async () => (await view(net.urls[V]!)).peers.find((p) => p.uri === net.urls[E])!.subscriptions;
    expect((await subs()).length).toBe(200);
    expect((await openAs(SID)).status).toBe(200); // same boot id: an idempotent re-OPEN
    expect((await subs()).length).toBe(200);
    expect((await openAs('hostile-boot-2')).status).toBe(200); // the peer restarted
    expect(await subs()).toEqual([]);
  });
});
