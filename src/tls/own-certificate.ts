/**
 * A certificate this ANS issues to itself from its own CA (the HTTPS server's, the federation
 * gateway's): a fresh P-256 key, kept with its chain in a 0600 file of the data dir, re-issued
 * when a third of its life is left or when the CA's root changed.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createKeyAndCsr, pemToX5c } from '../client/index.js';

export interface OwnCertificateIssuer {
  readonly canIssue: boolean;
  rootPem(): string;
  issue(req: {
    subjectId: string;
    fqdn: string;
    uri: string;
    csrPem: string;
  }): Promise<{ pem: string; chainPem: string; notBefore: Date; notAfter: Date }>;
}

export interface OwnCertificate {
  keyPem: string;
  /** The leaf first, then the issuing CA(s) and the root: base64 DER. */
  x5c: string[];
  notBefore: Date;
  notAfter: Date;
}

interface Saved {
  keyPem: string;
  x5c: string[];
  notAfter: string;
  notBefore?: string;
}

/** Whether a saved certificate can still be used: same root, more than a third of its life left. */
function usable(saved: OwnCertificate, rootB64: string | undefined, now: Date): boolean {
  const life = saved.notAfter.getTime() - saved.notBefore.getTime();
  return saved.x5c.at(-1) === rootB64 && saved.notAfter.getTime() - now.getTime() > life / 3;
}

export async function ownCertificate(o: {
  ca: OwnCertificateIssuer;
  dataDir: string;
  file: string;
  subjectId: string;
  fqdn: string;
  uri: string;
  now: () => Date;
  /** Used when the CA cannot issue (no passphrase) and no usable certificate is saved. */
  cannotIssue: () => Error;
}): Promise<OwnCertificate & { renewed: boolean }> {
  const path = join(o.dataDir, o.file);
  const rootB64 = pemToX5c(o.ca.rootPem())[0];
  if (existsSync(path)) {
    const s = JSON.parse(readFileSync(path, 'utf8')) as Saved;
    const notAfter = new Date(s.notAfter);
    // Files written before notBefore was kept: assume the default 30-day life.
    const notBefore = s.notBefore ? new Date(s.notBefore) : new Date(notAfter.getTime() - 30 * 86_400_000);
    const saved = { keyPem: s.keyPem, x5c: s.x5c, notBefore, notAfter };
    if (usable(saved, rootB64, o.now())) return { ...saved, renewed: false };
  }
  if (!o.ca.canIssue) throw o.cannotIssue();
  const { keyPem, csrPem } = await createKeyAndCsr(o.fqdn);
  const cert = await o.ca.issue({ subjectId: o.subjectId, fqdn: o.fqdn, uri: o.uri, csrPem });
  const x5c = [...pemToX5c(cert.pem), ...pemToX5c(cert.chainPem)];
  const { notBefore, notAfter } = cert;
  const saved: Saved = { keyPem, x5c, notAfter: notAfter.toISOString(), notBefore: notBefore.toISOString() };
  writeFileSync(path, JSON.stringify(saved), { mode: 0o600 });
  return { keyPem, x5c, notBefore, notAfter, renewed: true };
}
