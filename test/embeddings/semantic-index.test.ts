import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Db } from '../../src/store/index.js';
import { createEmbedder, SemanticIndex, type AgentDoc, type Embedder } from '../../embeddings/index.js';

function doc(id: string, name: string, description: string, extra: Partial<AgentDoc> = {}): AgentDoc {
  return {
    id,
    fqdn: `${id}.agents.internal`,
    name,
    description,
    skills: [{ id: 's', name, description, tags: [id.split('-')[0]!] }],
    protocols: ['a2a'],
    domain: 'agents.internal',
    ...extra,
  };
}

const DOCS: AgentDoc[] = [
  doc('weather-now', 'Weather Agent', 'Forecasts rain, wind and temperature for a city.'),
  doc('flight-book', 'Flight Booking Agent', 'Books airline tickets and seats on flights.', { protocols: ['mcp'] }),
  doc('hotel-book', 'Hotel Agent', 'Reserves hotel rooms and changes bookings.', { domain: 'travel.example' }),
  doc('wifi-fix', 'Wi-Fi Agent', 'Fixes home wifi coverage and mesh routers.'),
];

/** Counts texts embedded, to prove reuse. */
function counting(e: Embedder): Embedder & { count: number } {
  const c = {
    id: e.id,
    dim: e.dim,
    ...(e.wordVectors === undefined ? {} : { wordVectors: e.wordVectors }),
    count: 0,
    embed: async (t: string[]) => ((c.count += t.length), e.embed(t)),
  };
  return c;
}

describe('SemanticIndex (hash embedder)', () => {
  let db: Db;
  let dir: string;
  beforeAll(async () => {
    db = await openStore({});
    dir = mkdtempSync(join(tmpdir(), 'ans-emb-'));
  });
  afterAll(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('upserts, searches, stores vectors with embedder id and dim', async () => {
    const e = await createEmbedder({ kind: 'hash' });
    const idx = await SemanticIndex.open({ embedder: e, db, dataDir: undefined, ranking: { threshold: -Infinity } });
    let seq = 0;
    for (const d of DOCS) await idx.upsert(d, ++seq);
    expect(idx.size()).toBe(4);
    expect(idx.lastSeq).toBe(4);
    const { hits } = await idx.search('book a flight ticket', { k: 2 });
    expect(hits[0]!.id).toBe('flight-book');
    const rows = await db.query<{ embedder: string; dim: number; n: string }>(
      'SELECT embedder, dim, count(*)::text AS n FROM agent_vectors GROUP BY embedder, dim',
    );
    expect(rows).toEqual([{ embedder: e.id, dim: e.dim, n: expect.any(String) }]);
    // idempotent
    await idx.upsert(DOCS[0]!, 1);
    expect(idx.size()).toBe(4);
    await idx.close();
    await db.query('DELETE FROM agent_vectors');
  });

  it('filters by domain, protocol, skill tag and allow() before the k cut', async () => {
    const e = await createEmbedder({ kind: 'hash' });
    const idx = await SemanticIndex.open({ embedder: e, db, dataDir: undefined, ranking: { threshold: -Infinity } });
    let seq = 0;
    for (const d of DOCS) await idx.upsert(d, ++seq);
    const q = 'book flights and hotel rooms';
    expect((await idx.search(q, { k: 1, filter: { domain: 'travel.example.' } })).hits.map((h) => h.id)).toEqual([
      'hotel-book',
    ]);
    expect((await idx.search(q, { k: 1, filter: { protocol: 'MCP' } })).hits.map((h) => h.id)).toEqual(['flight-book']);
    expect((await idx.search(q, { k: 1, filter: { skillTag: 'wifi' } })).hits.map((h) => h.id)).toEqual(['wifi-fix']);
    const notFlight = await idx.search(q, { k: 1, filter: { allow: (id) => id !== 'flight-book' } });
    expect(notFlight.hits).toHaveLength(1);
    expect(notFlight.hits[0]!.id).not.toBe('flight-book');
    const none = await idx.search(q, { k: 3, filter: { allow: () => false } });
    expect(none.hits).toEqual([]);
    expect(none.reason).toBeTruthy();
    await idx.close();
    await db.query('DELETE FROM agent_vectors');
  });

  it('remove() marks deleted; a removed agent is never returned', async () => {
    const e = await createEmbedder({ kind: 'hash' });
    const idx = await SemanticIndex.open({ embedder: e, db, dataDir: undefined, ranking: { threshold: -Infinity } });
    let seq = 0;
    for (const d of DOCS) await idx.upsert(d, ++seq);
    await idx.remove('flight-book', ++seq);
    expect(idx.size()).toBe(3);
    const { hits } = await idx.search('book a flight ticket', { k: 10 });
    expect(hits.map((h) => h.id)).not.toContain('flight-book');
    // a stale upsert (older seq) does not resurrect ... but a newer one does, reusing a deleted slot
    await idx.upsert(DOCS[1]!, ++seq);
    expect((await idx.search('book a flight ticket', { k: 1 })).hits[0]!.id).toBe('flight-book');
    await idx.close();
    await db.query('DELETE FROM agent_vectors');
  });

  it('grows past its initial capacity (resizeIndex)', async () => {
    const e = await createEmbedder({ kind: 'hash' });
    const idx = await SemanticIndex.open({ embedder: e, db, dataDir: undefined, initialCapacity: 4 });
    for (let i = 0; i < 60; i++)
      await idx.upsert(doc(`agent-${i}`, `Agent ${i}`, `Handles task number ${i} for people.`), i + 1);
    expect(idx.size()).toBe(60);
    const { hits } = await idx.search('Agent 42 handles task number 42', { k: 3 });
    expect(hits[0]!.id).toBe('agent-42');
    await idx.close();
    await db.query('DELETE FROM agent_vectors');
  });

  it('applies changes concurrently; the saved lastSeq is a low-water mark below the oldest unfinished change', async () => {
    const h = await createEmbedder({ kind: 'hash' });
    // Embedding of the weather card waits for `release`: its change (seq 1) finishes last.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const gated: Embedder = {
      id: h.id,
      dim: h.dim,
      wordVectors: false,
      embed: async (t) => {
        if (t.some((x) => x.includes('forecasts rain'))) await gate;
        return h.embed(t);
      },
    };
    const d = mkdtempSync(join(tmpdir(), 'ans-emb-low-'));
    const idx = await SemanticIndex.open({ embedder: gated, db, dataDir: d, ranking: { threshold: -Infinity } });
    const first = idx.upsert(DOCS[0]!, 101);
    await Promise.all(DOCS.slice(1).map((doc, i) => idx.upsert(doc, 102 + i)));
    expect(idx.size()).toBe(3); // the later agents did not wait for the first
    expect(idx.lastSeq).toBe(100); // 101 is unfinished, so nothing from it on counts as applied
    await idx.save();
    release();
    await first;
    expect(idx.lastSeq).toBe(104);
    // A restart from the copy saved while 101 was in flight replays from 101 on.
    const saved = await SemanticIndex.open({ embedder: h, db, dataDir: d, ranking: { threshold: -Infinity } });
    expect(saved.lastSeq).toBe(100);
    await saved.close();
    await idx.close();
    rmSync(d, { recursive: true, force: true });
  });

  it('saves, loads and catches up; reuses stored vectors; a new embedder re-embeds', async () => {
    const base = await createEmbedder({ kind: 'hash' });
    const e1 = counting(base);
    const a = await SemanticIndex.open({ embedder: e1, db, dataDir: dir });
    await a.upsert(DOCS[0]!, 1);
    await a.upsert(DOCS[1]!, 2);
    await a.close(); // saves
    const embeddedBefore = e1.count;

    const e2 = counting(base);
    const b = await SemanticIndex.open({ embedder: e2, db, dataDir: dir, ranking: { threshold: -Infinity } });
    expect(b.lastSeq).toBe(2);
    expect(b.size()).toBe(2);
    // catch up: the lead replays changes after lastSeq
    await b.upsert(DOCS[2]!, 3);
    await b.remove('weather-now', 4);
    expect(b.size()).toBe(2);
    expect((await b.search('reserve a hotel room', { k: 1 })).hits[0]!.id).toBe('hotel-book');
    expect(e2.count).toBeGreaterThan(0);
    await b.close();

    // Index file lost: replaying everything reuses the vectors in the store (no embedding).
    SemanticIndex.discardSaved(dir);
    const e3 = counting(base);
    const c = await SemanticIndex.open({ embedder: e3, db, dataDir: dir, ranking: { threshold: -Infinity } });
    expect(c.lastSeq).toBe(0);
    const atOpen = e3.count; // the fixed reference sentences of the score background
    await c.upsert(DOCS[1]!, 2);
    await c.upsert(DOCS[2]!, 3);
    expect(e3.count).toBe(atOpen); // card vectors came from the store
    expect((await c.search('airline tickets', { k: 1 })).hits[0]!.id).toBe('flight-book');
    expect(e3.count).toBe(atOpen + 1); // only the query was embedded
    await c.close();
    expect(embeddedBefore).toBeGreaterThan(0);

    // Switching embedder: the saved index is ignored and the replay re-embeds.
    const other = await createEmbedder({ kind: 'hash' });
    const e4 = counting({ id: 'hash-other', dim: other.dim, embed: (t) => other.embed(t) });
    const d = await SemanticIndex.open({ embedder: e4, db, dataDir: dir });
    expect(d.lastSeq).toBe(0);
    await d.upsert(DOCS[1]!, 2);
    expect(e4.count).toBeGreaterThan(0);
    const rows = await db.query<{ embedder: string }>(
      "SELECT DISTINCT embedder FROM agent_vectors WHERE agent_id = 'flight-book'",
    );
    expect(rows).toEqual([{ embedder: 'hash-other' }]);
    await d.close();
  });
});
