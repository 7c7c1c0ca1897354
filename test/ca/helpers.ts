/** Shared helpers for the CA tests: openssl-made keys and CSRs, temp dirs, a store. */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Db } from '../../src/store/index.js';
import { CertificateAuthority, type CaOptions } from '../../ca/index.js';

export const OPENSSL = '/usr/bin/openssl';
export const ZONE = 'agents.internal.';

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'ans-ca-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export type KeySpec = 'P-256' | 'P-384' | 'Ed25519' | 'RSA2048' | 'RSA1024' | 'secp256k1';

const NEWKEY: Record<KeySpec, string[]> = {
  'P-256': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  'P-384': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  Ed25519: ['-newkey', 'ed25519'],
  RSA2048: ['-newkey', 'rsa:2048'],
  RSA1024: ['-newkey', 'rsa:1024'],
  secp256k1: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1'],
};

/** `openssl req` with a fresh key; returns the CSR and key PEM. */
export function opensslCsr(
  dir: string,
  spec: KeySpec,
  opts: { cn?: string; addext?: string[]; name?: string } = {},
): { csr: string; key: string; keyFile: string; csrFile: string } {
  const name = opts.name ?? `${spec}-${Math.random().toString(36).slice(2)}`;
  const keyFile = join(dir, `${name}.key`);
  const csrFile = join(dir, `${name}.csr`);
  const args = [
    'req',
    '-new',
    ...NEWKEY[spec],
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    csrFile,
    '-subj',
    opts.cn ? `/CN=${opts.cn}` : '/',
  ];
  for (const a of opts.addext ?? []) args.push('-addext', a);
  execFileSync(OPENSSL, args, { stdio: 'pipe' });
  return { csr: readFileSync(csrFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), keyFile, csrFile };
}

/** A CSR for an existing key file. */
export function opensslCsrForKey(dir: string, keyFile: string, cn: string): string {
  const out = join(dir, `k-${Math.random().toString(36).slice(2)}.csr`);
  execFileSync(OPENSSL, ['req', '-new', '-key', keyFile, '-out', out, '-subj', `/CN=${cn}`], { stdio: 'pipe' });
  return readFileSync(out, 'utf8');
}

/** Runs openssl; returns exit status and combined output (never throws). */
export function openssl(args: string[], input?: string): { status: number; out: string } {
  const r = spawnSync(OPENSSL, args, { encoding: 'utf8', input });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

export function write(dir: string, name: string, text: string | Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** An in-memory PGlite store with every migration applied. */
export function memoryStore(): Promise<Db> {
  return openStore({});
}

export async function memoryCa(extra: Partial<CaOptions> = {}): Promise<{ db: Db; ca: CertificateAuthority }> {
  const db = await memoryStore();
  const ca = await CertificateAuthority.open({
    db,
    zone: ZONE,
    publicUrl: 'http://127.0.0.1:8080',
    passphrase: 'test passphrase',
    ...extra,
  });
  return { db, ca };
}

/** Splits a PEM bundle into its certificates (issuing CA first, root last). */
export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? [];
}

export function pemToB64(pem: string): string {
  return pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
}

/** Like `openssl()` but without blocking the event loop (for talking to a server in this process). */
export function opensslAsync(args: string[]): Promise<{ status: number; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(OPENSSL, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, out });
    });
  });
}
