/**
 * The gateway's AMSP identity: a P-256 key with a certificate from our own ANS CA for
 * `amsp-gateway.<zone>` (kept in DIR/amsp-gateway.json, re-issued when a third of its life is left), and
 * the checks a receiver runs on a peer's x5c chain: every link verifies, every certificate is
 * in its validity period, and the root is one of the trust anchors (configured --peer-ca roots
 * plus our own root). The zone a signer may speak for is read from its certificate.
 */
import { X509Certificate, createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { CompactSign, compactVerify, decodeProtectedHeader } from 'jose';
import { pemToX5c } from '../client/index.js';
import { ownCertificate, type OwnCertificateIssuer } from '../tls/index.js';
import { FedErrors } from './errors.js';

export const GATEWAY_LABEL = 'amsp-gateway';

export interface GatewayIdentity {
  uri: string;
  zone: string; // no trailing dot
  key: KeyObject;
  x5c: string[]; // leaf, issuing CA(s), root: base64 DER
  notAfter: Date;
}

/** The `x5t#S256` of a chain: base64url SHA-256 of the leaf's DER (RFC 7515 4.1.8). */
export function chainId(x5c: readonly string[]): string {
  return createHash('sha256')
    .update(Buffer.from(x5c[0] ?? '', 'base64'))
    .digest('base64url');
}

export type IdentityIssuer = OwnCertificateIssuer;

const zoneOf = (z: string) => z.toLowerCase().replace(/\.$/, '');

export async function loadIdentity(o: {
  ca: IdentityIssuer;
  dataDir: string;
  zone: string;
  uri: string;
  now: () => Date;
}): Promise<GatewayIdentity> {
  const zone = zoneOf(o.zone);
  const fqdn = `${GATEWAY_LABEL}.${zone}`;
  const c = await ownCertificate({
    ca: o.ca,
    dataDir: o.dataDir,
    file: 'amsp-gateway.json',
    subjectId: `amsp:${o.uri}`,
    fqdn,
    uri: `ans://gateway.${fqdn}`,
    now: o.now,
    cannotIssue: () => FedErrors.noIdentity(),
  });
  return { uri: o.uri, zone, key: createPrivateKey(c.keyPem), x5c: c.x5c, notAfter: c.notAfter };
}

export interface VerifiedSigner {
  zone: string;
  publicKey: KeyObject;
  rootFingerprint: string;
}

/** Trust anchors (PEM roots) and a cache of verified chains. */
export class TrustStore {
  private anchors = new Set<string>();
  private texts: string[] = [];
  private readonly cache = new Map<string, VerifiedSigner & { notAfter: number }>();
  private loadedAt = 0;

  /**
   * `files` are --peer-ca PEM files, re-read (at most once a second) when a chain ends at an
   * unknown root, so a trust anchor can be added without a restart; a missing file is skipped.
   */
  constructor(
    private readonly files: readonly string[],
    private readonly pems: readonly string[],
    private readonly now: () => Date,
  ) {
    this.reload();
  }

  reload(): void {
    const next = new Set<string>();
    const texts = [...this.pems];
    for (const f of this.files) if (existsSync(f)) texts.push(readFileSync(f, 'utf8'));
    for (const pem of texts)
      for (const b of pemToX5c(pem)) next.add(new X509Certificate(Buffer.from(b, 'base64')).fingerprint256);
    this.anchors = next;
    this.texts = texts;
    this.loadedAt = this.now().getTime();
  }

  private trusted(fingerprint: string): boolean {
    if (this.anchors.has(fingerprint)) return true;
    if (this.now().getTime() - this.loadedAt < 1000) return false;
    this.reload();
    return this.anchors.has(fingerprint);
  }

  get size(): number {
    return this.anchors.size;
  }

  /** The trust anchors as one PEM bundle (for TLS to peer gateways). */
  pem(): string {
    return this.texts.join('\n');
  }

  /** Verifies an x5c chain [leaf, issuing..., root] and returns the zone the leaf speaks for. */
  verifyChain(x5c: unknown): VerifiedSigner {
    if (
      !Array.isArray(x5c) ||
      x5c.length < 2 ||
      x5c.length > 4 ||
      !x5c.every((s) => typeof s === 'string' && s.length < 16_384)
    ) {
      throw FedErrors.untrusted('x5c must be [gateway certificate, issuing CA, root] in base64 DER');
    }
    const key = (x5c as string[]).join('.');
    const t = this.now().getTime();
    const hit = this.cache.get(key);
    if (hit && hit.notAfter > t) return hit;
    let certs: X509Certificate[];
    try {
      certs = (x5c as string[]).map((b) => new X509Certificate(Buffer.from(b, 'base64')));
    } catch {
      throw FedErrors.untrusted('an x5c entry is not a DER certificate');
    }
    for (let i = 0; i < certs.length; i++) {
      const c = certs[i]!;
      if (t < Date.parse(c.validFrom) || t > Date.parse(c.validTo))
        throw FedErrors.untrusted(`certificate ${i} is outside its validity period`);
      const issuer = certs[i + 1] ?? c;
      if (i > 0 && !c.ca) throw FedErrors.untrusted(`certificate ${i} is not a CA`);
      if (!c.checkIssued(issuer) || !c.verify(issuer.publicKey))
        throw FedErrors.untrusted(`certificate ${i} is not signed by the next one`);
    }
    const root = certs.at(-1)!;
    if (!this.trusted(root.fingerprint256))
      throw FedErrors.untrusted('the chain does not end at a configured --peer-ca root');
    const san = certs[0]!.subjectAltName ?? '';
    const m = new RegExp(`DNS:${GATEWAY_LABEL}\\.([a-z0-9.-]+)`).exec(san);
    if (!m) throw FedErrors.untrusted(`the certificate does not name ${GATEWAY_LABEL}.<zone>`);
    const v = { zone: m[1]!, publicKey: certs[0]!.publicKey, rootFingerprint: root.fingerprint256 };
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { ...v, notAfter: Math.min(...certs.map((c) => Date.parse(c.validTo))) });
    return v;
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Signs with the gateway key. The header carries the certificate chain (`x5c`), a reference to
 * it (`x5t#S256`, for records whose chain goes once per session in a CHAIN message), or neither.
 */
export async function signJws(id: GatewayIdentity, payload: unknown, chain: boolean | 'reference'): Promise<string> {
  const header =
    chain === 'reference'
      ? { alg: 'ES256', typ: 'amsp+jws', 'x5t#S256': chainId(id.x5c) }
      : chain
        ? { alg: 'ES256', typ: 'amsp+jws', x5c: id.x5c }
        : { alg: 'ES256', typ: 'amsp+jws' };
  return new CompactSign(enc.encode(JSON.stringify(payload))).setProtectedHeader(header).sign(id.key);
}

/** Chains a peer sent in CHAIN messages, verified, by `x5t#S256`. */
export type KnownChains = ReadonlyMap<string, { signer: VerifiedSigner; x5c: string[] }>;

/**
 * Verifies an originator's record: its header carries the chain (`x5c`) or names one the peer
 * sent earlier in this session (`x5t#S256`). Returns the chain too, for forwarding.
 */
export async function verifyRecordJws(
  trust: TrustStore,
  known: KnownChains,
  jws: string,
): Promise<{ payload: unknown; signer: VerifiedSigner; x5c: string[] }> {
  let header: { x5c?: unknown; alg?: unknown; 'x5t#S256'?: unknown };
  try {
    header = decodeProtectedHeader(jws);
  } catch {
    throw FedErrors.badSignature('not a compact JWS');
  }
  if (header.alg !== 'ES256') throw FedErrors.badSignature('alg must be ES256');
  const ref = header['x5t#S256'];
  if (header.x5c === undefined && typeof ref === 'string') {
    const c = known.get(ref);
    if (!c) throw FedErrors.badSignature(`unknown certificate chain ${ref.slice(0, 16)}: no CHAIN for it`);
    return { payload: await verifyWith(c.signer.publicKey, jws), signer: c.signer, x5c: c.x5c };
  }
  const signer = trust.verifyChain(header.x5c);
  return { payload: await verifyWith(signer.publicKey, jws), signer, x5c: header.x5c as string[] };
}

/** Verifies a JWS carrying its x5c chain; returns payload and signer. */
export async function verifyChained(
  trust: TrustStore,
  jws: string,
): Promise<{ payload: unknown; signer: VerifiedSigner }> {
  let header: { x5c?: unknown; alg?: unknown };
  try {
    header = decodeProtectedHeader(jws);
  } catch {
    throw FedErrors.badSignature('not a compact JWS');
  }
  if (header.alg !== 'ES256') throw FedErrors.badSignature('alg must be ES256');
  const signer = trust.verifyChain(header.x5c);
  return { payload: await verifyWith(signer.publicKey, jws), signer };
}

export async function verifyWith(key: KeyObject, jws: string): Promise<unknown> {
  try {
    const { payload } = await compactVerify(jws, key, { algorithms: ['ES256'] });
    return JSON.parse(dec.decode(payload)) as unknown;
  } catch (e) {
    throw FedErrors.badSignature(e instanceof Error ? e.message : 'invalid');
  }
}
