import { KeyObject, createPrivateKey, webcrypto } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

/** The agent-side key kinds `ans agent init` makes; any allowed key works with an openssl CSR too. */
export type KeyKind = 'p256' | 'p384';

const CURVES: Record<KeyKind, { curve: string; hash: string }> = {
  p256: { curve: 'P-256', hash: 'SHA-256' },
  p384: { curve: 'P-384', hash: 'SHA-384' },
};

let engineSet = false;
function engine(): pkijs.ICryptoEngine {
  if (!engineSet) {
    pkijs.setEngine(
      'node',
      new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as unknown as pkijs.CryptoEngineParameters['crypto'] }),
    );
    engineSet = true;
  }
  return pkijs.getCrypto(true);
}

function pem(label: string, der: ArrayBuffer | Uint8Array): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END ${label}-----\n`;
}

/** A new key pair and a PKCS#10 CSR naming exactly `fqdn` (CN and SAN dNSName). */
export async function createKeyAndCsr(
  fqdn: string,
  kind: KeyKind = 'p256',
): Promise<{ keyPem: string; csrPem: string }> {
  engine();
  const { curve } = CURVES[kind];
  const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: curve }, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const keyPem = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString();
  return { keyPem, csrPem: await csrFor(keyPem, fqdn) };
}

/** A CSR for an existing EC key (PKCS#8 PEM), e.g. to renew with the same key. */
export async function csrFor(keyPem: string, fqdn: string): Promise<string> {
  const crypto = engine();
  const key = createPrivateKey(keyPem);
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const kind: KeyKind | undefined = curve === 'prime256v1' ? 'p256' : curve === 'secp384r1' ? 'p384' : undefined;
  if (key.asymmetricKeyType !== 'ec' || !kind)
    throw new Error('only P-256 and P-384 keys are supported here; use openssl req for others');
  const { curve: named, hash } = CURVES[kind];
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'ECDSA', namedCurve: named }, false, [
    'sign',
  ]);
  const jwk = key.export({ format: 'jwk' });
  const publicKey = await webcrypto.subtle.importKey(
    'jwk',
    { kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y },
    { name: 'ECDSA', namedCurve: named },
    true,
    ['verify'],
  );
  const csr = new pkijs.CertificationRequest();
  csr.subject.typesAndValues.push(
    new pkijs.AttributeTypeAndValue({ type: '2.5.4.3', value: new asn1js.Utf8String({ value: fqdn }) }),
  );
  await csr.subjectPublicKeyInfo.importKey(publicKey, crypto);
  const san = new pkijs.GeneralNames({ names: [new pkijs.GeneralName({ type: 2, value: fqdn })] });
  const extensions = new pkijs.Extensions({
    extensions: [new pkijs.Extension({ extnID: '2.5.29.17', critical: false, extnValue: san.toSchema().toBER(false) })],
  });
  csr.attributes = [new pkijs.Attribute({ type: '1.2.840.113549.1.9.14', values: [extensions.toSchema()] })];
  await csr.sign(privateKey, hash, crypto);
  return pem('CERTIFICATE REQUEST', csr.toSchema().toBER(false));
}
