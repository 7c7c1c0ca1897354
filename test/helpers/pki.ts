import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type TestKeyType = 'p256' | 'p384' | 'ed25519' | 'rsa2048' | 'rsa1024';

const GENKEY: Record<TestKeyType, string[]> = {
  p256: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  p384: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  ed25519: ['-algorithm', 'ED25519'],
  rsa2048: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
  rsa1024: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'],
};

/** A key and a CSR made with the openssl binary, as an operator following README would. */
export function opensslCsr(
  fqdn: string,
  opts: { keyType?: TestKeyType; sans?: string[]; cn?: string } = {},
): { keyPem: string; csrPem: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ans-csr-'));
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['genpkey', ...GENKEY[opts.keyType ?? 'p256'], '-out', key], { stdio: 'pipe' });
  const sans = (opts.sans ?? [fqdn]).map((s) => `DNS:${s}`).join(',');
  execFileSync(
    'openssl',
    [
      'req',
      '-new',
      '-key',
      key,
      '-subj',
      `/CN=${opts.cn ?? fqdn}`,
      '-addext',
      `subjectAltName=${sans}`,
      '-out',
      join(dir, 'csr.pem'),
    ],
    { stdio: 'pipe' },
  );
  return { keyPem: readFileSync(key, 'utf8'), csrPem: readFileSync(join(dir, 'csr.pem'), 'utf8'), dir };
}

/** Runs `openssl verify` with the CA chain; returns its exit status and output. */
export function opensslVerify(chainPem: string, certPem: string, extra: string[] = []): { ok: boolean; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ans-verify-'));
  const blocks = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? [];
  writeFileSync(join(dir, 'root.pem'), blocks.at(-1) ?? '');
  writeFileSync(join(dir, 'untrusted.pem'), blocks.slice(0, -1).join('\n'));
  writeFileSync(join(dir, 'leaf.pem'), certPem);
  try {
    const out = execFileSync(
      'openssl',
      [
        'verify',
        '-CAfile',
        join(dir, 'root.pem'),
        '-untrusted',
        join(dir, 'untrusted.pem'),
        ...extra,
        join(dir, 'leaf.pem'),
      ],
      {
        stdio: 'pipe',
      },
    ).toString();
    return { ok: true, out };
  } catch (e) {
    const err = e as { stdout?: Buffer; stderr?: Buffer };
    return { ok: false, out: `${err.stdout?.toString() ?? ''}${err.stderr?.toString() ?? ''}` };
  }
}
