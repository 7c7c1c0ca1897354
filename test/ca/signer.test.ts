import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compactVerify, createLocalJWKSet, decodeProtectedHeader } from 'jose';
import type { Db } from '../../src/store/index.js';
import { ResponseSigner } from '../../ca/index.js';
import { memoryStore } from './helpers.js';

let db: Db;
beforeAll(async () => {
  db = await memoryStore();
});
afterAll(async () => {
  await db.close();
});

describe('ResponseSigner', () => {
  it('signs compact ES256 JWS that verifies with its JWKS; one stored key shared by processes', async () => {
    const a = await ResponseSigner.open({ db, passphrase: 'pw', issuer: 'http://127.0.0.1:8080' });
    const b = await ResponseSigner.open({ db, passphrase: 'pw', issuer: 'http://127.0.0.1:8080' });
    expect(a.kid).toBe(b.kid);
    const jws = await a.sign({ query: 'weather', results: [] });
    expect(decodeProtectedHeader(jws)).toEqual({ alg: 'ES256', kid: a.kid });
    const { payload } = await compactVerify(jws, createLocalJWKSet(b.jwks() as { keys: [] }));
    const body = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
    expect(body).toMatchObject({ iss: 'http://127.0.0.1:8080', query: 'weather', results: [] });
    expect(typeof body.iat).toBe('number');
    for (const k of a.jwks().keys) expect(k).not.toHaveProperty('d');
    const rows = await db.query<{ key_pem: string }>("SELECT key_pem FROM ca_keys WHERE role = 'response-signer'");
    expect(rows).toHaveLength(1);
    expect(rows[0]!.key_pem).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
  });

  it('without a passphrase signs with an ephemeral key and still publishes the stored one', async () => {
    const stored = await ResponseSigner.open({ db, passphrase: 'pw', issuer: 'i' });
    const eph = await ResponseSigner.open({ db, passphrase: undefined, issuer: 'i' });
    expect(eph.ephemeral).toBe(true);
    expect(eph.kid).not.toBe(stored.kid);
    const kids = eph.jwks().keys.map((k) => (k as { kid: string }).kid);
    expect(kids).toEqual([eph.kid, stored.kid]);
    const jws = await eph.sign({ a: 1 });
    await expect(compactVerify(jws, createLocalJWKSet(eph.jwks() as { keys: [] }))).resolves.toBeTruthy();
  });
});
