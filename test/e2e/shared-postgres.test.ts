/**
 * Two `ans serve` processes on one PostgreSQL: each sees the other's changes within a second
 * (LISTEN/NOTIFY on the change sequence), and the audit chain is checked through the CLI even
 * after someone edits the table behind ANS's back.
 */
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { card, client } from '../helpers/api.js';
import { opensslCsr } from '../helpers/pki.js';
import { freshSchemaUrl, pgAvailable } from '../helpers/pg.js';
import { runCli, startServer, type RunningServer } from '../helpers/server.js';

let a: RunningServer | undefined;
let b: RunningServer | undefined;
let url = '';
let hasPg = false;

beforeAll(async () => {
  hasPg = await pgAvailable();
  if (!hasPg) return;
  url = await freshSchemaUrl();
  const env = { DATABASE_URL: url, ANS_CA_PASSPHRASE: 'shared-test-passphrase' };
  a = await startServer({ env });
  b = await startServer({ env });
}, 180_000);
afterAll(async () => {
  await a?.stop();
  await b?.stop();
});

function dig(port: number, type: string, name: string): string {
  return execFileSync('dig', ['@127.0.0.1', '-p', String(port), '+short', type, name])
    .toString()
    .trim();
}

async function within(ms: number, probe: () => boolean | Promise<boolean>): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await probe()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return probe();
}

describe('two processes sharing PostgreSQL', () => {
  it('B serves in DNS, within a second, an agent approved on A; and withdraws it when A revokes it', async () => {
    if (!hasPg) return;
    const apiA = client(a!.url);
    const r = await apiA.post<{ id: string }>('/v1/agents', {
      card: card('shared'),
      csr: opensslCsr('shared.agents.internal').csrPem,
    });
    // The first process made the admin token; the second has none of its own.
    const ok = await apiA.post(`/v1/agents/${r.body.id}/approve`, {}, a!.adminToken);
    expect(ok.status).toBe(200);
    expect(await within(1000, () => dig(b!.dnsPort, 'SRV', '_a2a._tcp.shared.agents.internal').includes('8443'))).toBe(
      true,
    );

    const rev = await client(b!.url).post(`/v1/agents/${r.body.id}/revoke`, { reason: 'keyCompromise' }, a!.adminToken);
    expect(rev.status).toBe(200);
    expect(await within(1000, () => dig(a!.dnsPort, 'SRV', '_a2a._tcp.shared.agents.internal') === '')).toBe(true);
  });

  it('`ans admin audit --verify` names the first entry someone edited in the table', async () => {
    if (!hasPg) return;
    const good = await runCli(['admin', 'audit', '--verify', '--server', b!.url, '--token', a!.adminToken]);
    expect(good.code).toBe(0);
    expect(good.stdout).toContain('audit chain intact');

    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query("UPDATE audit_log SET actor = 'admin:someone-else' WHERE seq = 2");
    await c.end();
    const bad = await runCli(['admin', 'audit', '--verify', '--server', a!.url, '--token', a!.adminToken]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('audit chain BROKEN at entry 2');
  });
});
