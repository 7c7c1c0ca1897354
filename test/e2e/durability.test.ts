/** A registration acknowledged with 202 survives `kill -9` at any moment, on PGlite and PostgreSQL. */
import { describe, expect, it } from 'vitest';
import { card, client } from '../helpers/api.js';
import { opensslCsr } from '../helpers/pki.js';
import { freshSchemaUrl, pgAvailable } from '../helpers/pg.js';
import { startServer, tempDir } from '../helpers/server.js';

async function killDuringRegistrations(env: NodeJS.ProcessEnv) {
  const dataDir = tempDir();
  const s = await startServer({ dataDir, env, args: ['--register-rate', '100000'] });
  const api = client(s.url);
  // CSRs are made up front so the loop is as dense as possible.
  const csrs = Array.from({ length: 8 }, (_, i) => opensslCsr(`dur${i}.agents.internal`).csrPem);
  const acked: string[] = [];
  let n = 0;
  let stop = false;
  const run = async () => {
    while (!stop) {
      const i = n++;
      const label = `dur${i % 8}`;
      try {
        const r = await api.post<{ id: string }>('/v1/agents', { card: card(label), csr: csrs[i % 8]! });
        if (r.status === 202) acked.push(r.body.id);
        // Free the label again so the loop can keep registering the same 8 names.
        if (r.status === 202) await api.post(`/v1/agents/${r.body.id}/reject`, {}, s.adminToken);
      } catch {
        return; // the connection died with the process
      }
    }
  };
  const loops = [run(), run(), run(), run()];
  await new Promise((r) => setTimeout(r, 1500 + Math.random() * 1000));
  s.proc.kill('SIGKILL');
  stop = true;
  await Promise.all(loops);
  await s.stop();
  expect(acked.length).toBeGreaterThan(5);

  const again = await startServer({ dataDir, env });
  try {
    const api2 = client(again.url);
    const missing: string[] = [];
    for (const id of acked) {
      const r = await api2.get(`/v1/agents/${id}`, again.adminToken);
      if (r.status !== 200) missing.push(id);
    }
    expect(missing).toEqual([]);
  } finally {
    await again.stop();
  }
}

describe('durability under kill -9', () => {
  it('on PGlite: every acknowledged registration is there after a restart', async () => {
    await killDuringRegistrations({});
  }, 180_000);

  it('on PostgreSQL: every acknowledged registration is there after a restart', async () => {
    if (!(await pgAvailable())) return;
    await killDuringRegistrations({ DATABASE_URL: await freshSchemaUrl() });
  }, 180_000);
});
