import { createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import { SignJWT } from 'jose';

/** PEM certificates in a bundle -> base64 DER strings, the form `x5c` carries. */
export function pemToX5c(bundle: string): string[] {
  const out: string[] = [];
  for (const m of bundle.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)) {
    out.push(m[1]!.replace(/\s+/g, ''));
  }
  return out;
}

/** The inverse of pemToX5c: base64 DER certificates as one PEM bundle. */
export function x5cToPem(x5c: readonly string[]): string {
  return x5c
    .map((b64) => `-----BEGIN CERTIFICATE-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`)
    .join('');
}

function algFor(keyPem: string): 'ES256' | 'ES384' | 'EdDSA' | 'RS256' {
  const k = createPrivateKey(keyPem);
  if (k.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (k.asymmetricKeyType === 'rsa') return 'RS256';
  return k.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'ES384' : 'ES256';
}

/**
 * A short-lived agent JWT: signed by the agent's certificate key, x5c = [certificate, issuing
 * CA], sub = agent id, aud = zone. What `ans agent token` prints and every agent call carries.
 */
export async function agentToken(opts: {
  agentId: string;
  zone: string;
  keyPem: string;
  certificatePem: string; // the agent certificate, optionally followed by the issuing CA
  chainPem?: string; // the issuing CA when not in certificatePem
  lifetimeSeconds?: number;
  now?: Date;
}): Promise<string> {
  const x5c = pemToX5c(opts.certificatePem);
  if (x5c.length === 0) throw new Error('no certificate in certificatePem');
  if (x5c.length === 1 && opts.chainPem) x5c.push(...pemToX5c(opts.chainPem).slice(0, 1));
  // Validates the leaf parses; a bad file should fail here, not as a 401.
  new X509Certificate(Buffer.from(x5c[0]!, 'base64'));
  const now = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  const alg = algFor(opts.keyPem);
  return new SignJWT({})
    .setProtectedHeader({ alg, typ: 'JWT', x5c: x5c.slice(0, 2) })
    .setSubject(opts.agentId)
    .setAudience(opts.zone)
    .setIssuedAt(now)
    .setExpirationTime(now + (opts.lifetimeSeconds ?? 120))
    .setJti(randomUUID())
    .sign(createPrivateKey(opts.keyPem));
}
