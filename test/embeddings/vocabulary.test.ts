import { mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Db } from '../../src/store/index.js';
import { createEmbedder, SemanticIndex, type AgentDoc, type Embedder } from '../../embeddings/index.js';
import { topicWords, Vocabulary, wordsOf } from '../../embeddings/vocabulary.js';

/** The hash embedder with word vectors declared meaningful (trigram overlap), counting texts. */
async function wordy(): Promise<Embedder & { count: number }> {
  const h = await createEmbedder({ kind: 'hash' });
  const c = {
    id: 'hash-words',
    dim: h.dim,
    count: 0,
    embed: async (t: string[]) => ((c.count += t.length), h.embed(t)),
  };
  return c;
}

const doc = (id: string, name: string, description: string): AgentDoc => ({
  id,
  fqdn: `${id}.agents.internal`,
  name,
  description,
  skills: [],
  protocols: ['a2a'],
  domain: 'agents.internal',
});

describe('Vocabulary (registry words for the out-of-scope test)', () => {
  it('tokenises letters and digits, lower-cased; a CJK run is one token', () => {
    expect(wordsOf("Wi-Fi's dead, room 42!")).toEqual(['wi', 'fi', 's', 'dead', 'room', '42']);
    expect(wordsOf('帮我 订票')).toEqual(['帮我', '订票']);
  });

  it('keeps no word for a token of digits alone (ids, counts), so cards with ids do not grow it', async () => {
    expect(topicWords('Agent 12345 handles 5G in region 7 (v2)')).toEqual([
      'agent',
      'handles',
      '5g',
      'in',
      'region',
      'v2',
    ]);
    const e = await wordy();
    const v = new Vocabulary(e);
    await v.setAgent('a', 'parcel tracker 101');
    await v.setAgent('b', 'parcel tracker 202');
    expect(v.size).toBe(2);
    expect(v.wordsToEmbed('track parcel 303')).toEqual(['track']);
    expect(await v.coverage('parcel 999')).toBe(1); // the number neither helps nor hurts
  });

  it('scores a query by its words nearest registry words; reference-counted by agents', async () => {
    const e = await wordy();
    const v = new Vocabulary(e);
    await v.setAgent('a', 'broadband router fibre');
    await v.setAgent('b', 'fibre weather forecast');
    expect(v.size).toBe(5);
    expect(await v.coverage('broadband forecast')).toBe(1);
    const near = await v.coverage('routers'); // shares trigrams with "router"
    const far = await v.coverage('xylophone');
    expect(near).toBeGreaterThan(far);
    expect(far).toBeLessThan(0.5);
    v.removeAgent('a');
    expect(v.size).toBe(3); // fibre stays: agent b still uses it
    expect(await v.coverage('fibre')).toBe(1);
    await v.setAgent('b', 'weather'); // replacing an agent's words
    expect(v.size).toBe(1);
    const before = e.count;
    await v.setAgent('c', 'weather'); // known words are not embedded again
    expect(e.count).toBe(before);
  });
});

describe('Vocabulary word alignment (late interaction)', () => {
  it("scores each agent by how well its own words match the query's words", async () => {
    const v = new Vocabulary(await wordy());
    await v.setAgent('a', 'broadband router fibre');
    await v.setAgent('b', 'weather forecast rain');
    const { alignment } = await v.analyse('routers fibre');
    const al = alignment(['a', 'b', 'nobody']);
    expect(al.get('a')).toBeGreaterThan(al.get('b')!);
    expect(al.get('a')).toBeGreaterThan(0.5); // "fibre" is exact, "routers" close to "router"
    expect(al.get('nobody')).toBe(0); // no words
  });
});

describe('SemanticIndex with the vocabulary test', () => {
  let db: Db;
  let dir: string;
  beforeAll(async () => {
    db = await openStore({});
    dir = mkdtempSync(join(tmpdir(), 'ans-vocab-'));
  });
  afterAll(async () => {
    await db.close();
  });

  const docs = [
    doc('broadband', 'Broadband agent', 'Diagnoses home broadband, fibre and router faults.'),
    doc('weather', 'Weather agent', 'Forecasts rain, wind and temperature for a city.'),
    doc('flights', 'Flight agent', 'Books airline tickets and seats.'),
  ];

  it('refuses a query about words no card uses, once the registry has enough words; saves and restores', async () => {
    const e = await wordy();
    const ranking = { coverage: 0.6, coverageMinWords: 10, threshold: -Infinity };
    const idx = await SemanticIndex.open({ embedder: e, db, dataDir: dir, ranking });
    for (const [i, d] of docs.entries()) await idx.upsert(d, i + 1);
    expect((await idx.search('router fibre faults at home', { k: 1 })).hits[0]!.id).toBe('broadband');
    const off = await idx.search('xylophone quartet concerto', { k: 1 });
    expect(off.hits).toEqual([]);
    expect(off.reason).toMatch(/no registered agent/);
    expect((await idx.rank('xylophone quartet concerto', { k: 1 })).coverage).toBeLessThan(0.6);
    await idx.close();
    expect(existsSync(join(dir, 'vocabulary.json'))).toBe(true);

    // Reopened from the data dir: the words come back without being embedded again.
    const e2 = await wordy();
    const again = await SemanticIndex.open({ embedder: e2, db, dataDir: dir, ranking });
    const atOpen = e2.count;
    expect((await again.search('xylophone quartet concerto', { k: 1 })).hits).toEqual([]);
    expect((await again.search('weather forecast', { k: 1 })).hits[0]!.id).toBe('weather');
    // the two queries and their words no card uses (xylophone, quartet, concerto, forecast) only
    expect(e2.count - atOpen).toBe(6);
    await again.remove('weather', 4);
    expect((await again.search('rain forecast', { k: 1 })).hits).toEqual([]); // its words left with it
    await again.close();
  });

  it('does not judge a small registry (fewer words than coverageMinWords), nor with the hash embedder', async () => {
    const e = await wordy();
    const small = await SemanticIndex.open({
      embedder: e,
      db,
      dataDir: undefined,
      ranking: { coverage: 0.6, threshold: -Infinity },
    });
    for (const [i, d] of docs.entries()) await small.upsert(d, i + 1);
    expect((await small.search('xylophone quartet concerto', { k: 1 })).hits.length).toBe(1);
    await small.close();
    const hash = await createEmbedder({ kind: 'hash' });
    const h = await SemanticIndex.open({ embedder: hash, db, dataDir: undefined, ranking: { threshold: -Infinity } });
    for (const [i, d] of docs.entries()) await h.upsert(d, i + 1);
    expect((await h.rank('xylophone', { k: 1 })).coverage).toBeUndefined();
    await h.close();
  });
});
