/**
 * CA keys at rest: generated with node:crypto, stored only as encrypted PKCS#8 (PBES2 with
 * AES-256-CBC, PBKDF2 key derivation) under the operator's passphrase. Nothing here logs.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { CaErrors } from './errors.js';

export type CaCurve = 'P-256' | 'P-384';

export function generateCaKey(curve: CaCurve): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: curve }).privateKey;
}

export function encryptKey(key: KeyObject, passphrase: string): string {
  if (passphrase.length === 0) throw CaErrors.badConfig('the CA passphrase is empty');
  return key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;
}

/** Decrypts a stored key; a wrong passphrase is a CA_ERR_PASSPHRASE_WRONG naming the key. */
export function decryptKey(pem: string, passphrase: string, what: string): KeyObject {
  try {
    return createPrivateKey({ key: pem, format: 'pem', passphrase });
  } catch {
    throw CaErrors.passphraseWrong(what);
  }
}

export function publicSpkiDer(key: KeyObject): Uint8Array {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return new Uint8Array(pub.export({ type: 'spki', format: 'der' }));
}
