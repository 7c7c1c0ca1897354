/**
 * Beyond loopback ANS serves HTTPS only; without --tls-cert its own CA issues the server's
 * certificate for the public URL's host. Checked with openssl s_client and curl against the
 * exported ANS root, on this machine's first non-loopback address.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { runCli, startServer, tempDir, type RunningServer } from '../helpers/server.js';

const address = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
if (!address) process.stderr.write('\n*** no non-loopback IPv4 address: server TLS tests are SKIPPED ***\n\n');

describe.skipIf(!address)('HTTPS with a certificate from the ANS CA', () => {
  const name = 'ans.agents.internal';
  let s: RunningServer;
  let port: number;
  const out = tempDir('ans-tls-');
  const root = join(out, 'root.pem');

  beforeAll(async () => {
    port = await freePort();
    s = await startServer({
      args: ['--host', address!, '--public-url', `https://${name}:${port}`],
      httpPort: port,
    });
    // The root comes over an unverified connection; everything after is verified against it.
    const chain = execFileSync('curl', ['-sk', `https://${address}:${port}/v1/ca/certificate`], { encoding: 'utf8' });
    const certs = chain.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g)!;
    writeFileSync(root, certs.at(-1)!);
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('the handshake is TLS 1.3 and the chain verifies against the ANS root for the public name', () => {
    const r = spawnSync(
      'openssl',
      [
        's_client',
        '-connect',
        `${address}:${port}`,
        '-servername',
        name,
        '-verify_hostname',
        name,
        '-CAfile',
        root,
        '-brief',
      ],
      { input: 'Q\n', encoding: 'utf8', timeout: 15_000 },
    );
    const text = `${r.stdout}\n${r.stderr}`;
    expect(text).toContain('Verification: OK');
    expect(text).toContain('Protocol version: TLSv1.3');
  });
  it('a verified HTTPS client reaches the API through the public name; plain HTTP does not', () => {
    const health = execFileSync(
      'curl',
      ['-s', '--cacert', root, '--resolve', `${name}:${port}:${address}`, `https://${name}:${port}/healthz`],
      { encoding: 'utf8' },
    );
    expect(JSON.parse(health)).toMatchObject({ status: 'ok' });
    const plain = spawnSync(
      'curl',
      ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${address}:${port}/healthz`],
      {
        encoding: 'utf8',
      },
    );
    expect(plain.stdout).not.toBe('200');
  });
  it('a name the certificate does not carry fails verification', () => {
    const r = spawnSync(
      'openssl',
      ['s_client', '-connect', `${address}:${port}`, '-verify_hostname', 'other.example', '-CAfile', root, '-brief'],
      { input: 'Q\n', encoding: 'utf8', timeout: 15_000 },
    );
    expect(`${r.stdout}\n${r.stderr}`).not.toContain('Verification: OK');
  });
  it('a restart reuses the saved certificate', async () => {
    const before = readFileSync(join(s.dataDir, 'server-tls.json'), 'utf8');
    await s.stop();
    s = await startServer({
      dataDir: s.dataDir,
      httpPort: port,
      args: ['--host', address!, '--public-url', `https://${name}:${port}`],
    });
    const after = readFileSync(join(s.dataDir, 'server-tls.json'), 'utf8');
    expect(after).toBe(before);
  });
});

describe('refused configurations', () => {
  it('a public URL the ANS CA cannot certify, without --tls-cert', async () => {
    const r = await runCli([
      'serve',
      '--data-dir',
      tempDir(),
      '--host',
      '0.0.0.0',
      '--public-url',
      'https://ans.example.com',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/HTTPS only.*--tls-cert/);
  });
});
