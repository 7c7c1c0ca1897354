import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Db } from '../../src/store/index.js';
import { createEmbedder, SemanticIndex, type Embedder } from '../../embeddings/index.js';
import { writeTinyModel } from './tiny-model.js';

const WORDS =
  'book flight ticket airline seat hotel room reserve weather rain forecast wind wifi router mesh coverage'.split(' ');

describe('transformers.js embedder (tiny ONNX model built by the test, no network)', () => {
  let root: string;
  let e: Embedder;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'ans-tiny-'));
    writeTinyModel(join(root, 'tiny-bert'), WORDS, 16);
    e = await createEmbedder({ kind: 'transformers', modelDir: join(root, 'tiny-bert') });
  });
  afterAll(async () => {
    await e?.close?.();
    rmSync(root, { recursive: true, force: true });
  });

  it('loads from the local directory and embeds to unit vectors of the model dimension', async () => {
    expect(e.dim).toBe(16);
    expect(e.id).toMatch(/^transformers:tiny-bert:/);
    const [a, b, c] = await e.embed(['book a flight ticket', 'airline ticket booking seat', 'rain and wind forecast']);
    const dot = (x: Float32Array, y: Float32Array) => x.reduce((s, v, i) => s + v * y[i]!, 0);
    expect(dot(a!, a!)).toBeCloseTo(1, 4);
    expect(dot(a!, b!)).toBeGreaterThan(dot(a!, c!));
  });

  it('drives a SemanticIndex', async () => {
    const db: Db = await openStore({});
    const idx = await SemanticIndex.open({ embedder: e, db, dataDir: undefined, ranking: { threshold: -Infinity } });
    const mk = (id: string, description: string) => ({
      id,
      fqdn: `${id}.agents.internal`,
      name: id,
      description,
      skills: [],
      protocols: ['a2a'],
      domain: 'agents.internal',
    });
    await idx.upsert(mk('flights', 'book flight ticket airline seat'), 1);
    await idx.upsert(mk('weather', 'weather rain forecast wind'), 2);
    expect((await idx.search('rain forecast', { k: 1 })).hits[0]!.id).toBe('weather');
    await idx.close();
    await db.close();
  });

  it('refuses a directory without a model', async () => {
    await expect(createEmbedder({ kind: 'transformers', modelDir: join(root, 'nothing') })).rejects.toThrow(
      /tokenizer.json/,
    );
  });
});
