/**
 * The key that signs resolve answers (compact JWS, ES256). It lives in `ca_keys` (role
 * 'response-signer'), encrypted with the CA passphrase, created by the first process under the
 * CA advisory lock. Without a passphrase the process signs with an ephemeral key; its public
 * half is published in the JWKS next to the stored key's, so clients can still verify.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { CompactSign, calculateJwkThumbprint, exportJWK, type JWK } from 'jose';
import type { Db } from '../src/store/index.js';
import { decryptKey, encryptKey, publicSpkiDer } from './keys.js';
import * as repo from './repo.js';

export interface ResponseSignerOptions {
  db: Db;
  passphrase: string | undefined;
  /** `iss` of every signed payload (the public URL). */
  issuer: string;
  now?: () => Date;
}

interface PublicEntry {
  kid: string;
  jwk: JWK;
}

async function publicEntry(pub: KeyObject): Promise<PublicEntry> {
  const jwk = await exportJWK(pub);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  return { kid, jwk: { ...jwk, kid, alg: 'ES256', use: 'sig' } };
}

export class ResponseSigner {
  private readonly encoder = new TextEncoder();

  private constructor(
    private readonly key: KeyObject,
    readonly kid: string,
    /** True when no passphrase was given and the key lives only in this process. */
    readonly ephemeral: boolean,
    private readonly published: readonly PublicEntry[],
    private readonly issuer: string,
    private readonly now: () => Date,
  ) {}

  static async open(opts: ResponseSignerOptions): Promise<ResponseSigner> {
    const now = opts.now ?? (() => new Date());
    const find = (rows: repo.KeyRow[]) =>
      rows.filter((r) => r.role === 'response-signer').sort((a, b) => b.generation - a.generation)[0];
    let row = find(await repo.loadKeys(opts.db));
    if (!row && opts.passphrase !== undefined) {
      const pass = opts.passphrase;
      row = await opts.db.transaction(async (tx) => {
        await repo.lockCa(tx);
        const again = find(await repo.loadKeys(tx));
        if (again) return again;
        const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
        const fresh: repo.KeyRow = {
          id: 'signer-1',
          role: 'response-signer',
          generation: 1,
          keyPem: encryptKey(key, pass),
          spkiDer: publicSpkiDer(key),
          certDer: null,
          notAfter: null,
        };
        await repo.insertKey(tx, fresh);
        return fresh;
      });
    }
    const stored = row ? createPublicKey({ key: Buffer.from(row.spkiDer), format: 'der', type: 'spki' }) : undefined;
    if (row && opts.passphrase !== undefined) {
      const key = decryptKey(row.keyPem, opts.passphrase, 'response-signing');
      const e = await publicEntry(createPublicKey(key));
      return new ResponseSigner(key, e.kid, false, [e], opts.issuer, now);
    }
    // No passphrase: sign with a key that lives only in this process.
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const e = await publicEntry(createPublicKey(key));
    const published = stored ? [e, await publicEntry(stored)] : [e];
    return new ResponseSigner(key, e.kid, true, published, opts.issuer, now);
  }

  /** Compact JWS over the payload; `iss` and `iat` are added unless the payload has them. */
  async sign(payload: Record<string, unknown>): Promise<string> {
    const body = { iss: this.issuer, iat: Math.floor(this.now().getTime() / 1000), ...payload };
    return new CompactSign(this.encoder.encode(JSON.stringify(body)))
      .setProtectedHeader({ alg: 'ES256', kid: this.kid })
      .sign(this.key);
  }

  /** The public keys that verify answers (`GET /.well-known/jwks.json`). */
  jwks(): { keys: object[] } {
    return { keys: this.published.map((p) => ({ ...p.jwk })) };
  }
}
