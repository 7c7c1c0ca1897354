/** Three Level-2 gateways in a ring (A -> B -> C -> A): one registration reaches all, no loops, withdraw converges. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, card } from '../helpers/api.js';
import { opensslCsr } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { until } from '../helpers/wait.js';
import { startServer, tempDir, type RunningServer } from '../helpers/server.js';

interface View {
  forwarding: { id: string; nextHop: string; path: string[] }[];
  peers: { uri: string; state: string; messagesIn: number }[];
  stats: { loopsDropped: number };
}

describe('AMSP ring of three Level-2s', () => {
  const dir = tempDir('ans-ring-');
  const zones = ['a', 'b', 'c'];
  const cas = zones.map((z) => join(dir, `${z}.pem`));
  const urls: string[] = [];
  const servers: RunningServer[] = [];

  beforeAll(async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    for (const p of ports) urls.push(`http://127.0.0.1:${p}`);
    for (let i = 0; i < 3; i++) {
      const args = [
        '--zone',
        `${zones[i]}.internal.`,
        '--role',
        'l2',
        '--peer',
        urls[(i + 1) % 3]!,
        ...cas.flatMap((f) => ['--peer-ca', f]),
      ];
      servers.push(
        await startServer({ args: [...args, '--hold-time', '3', '--keepalive', '1', '--http-port', String(ports[i])] }),
      );
      const pem = await (await fetch(`${urls[i]}/v1/ca/certificate`)).text();
      writeFileSync(cas[i]!, pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)!.at(-1)!);
    }
  }, 400_000);

  afterAll(async () => {
    for (const s of servers) await s.stop();
  });

  it('propagates once along the shortest paths and withdraws everywhere', async () => {
    const view = (i: number) =>
      client(urls[i]!)
        .get<View>('/amsp/v1/routes')
        .then((r) => r.body);
    for (let i = 0; i < 3; i++)
      await until(async () =>
        (await view(i)).peers.filter((p) => p.state === 'established').length === 2 ? true : undefined,
      );
    const a = client(urls[0]!);
    const { csrPem } = opensslCsr('radio.a.internal');
    const reg = await a.post<{ id: string }>('/v1/agents', { card: card('radio'), csr: csrPem });
    await a.post(`/v1/agents/${reg.body.id}/approve`, {}, servers[0]!.adminToken);
    for (const i of [1, 2]) {
      const e = await until(async () => (await view(i)).forwarding.find((f) => f.id === reg.body.id), 5000);
      expect(e.path).toEqual([urls[0]]);
      expect(e.nextHop).toBe(urls[0]);
    }
    await a.del(`/v1/agents/${reg.body.id}`, servers[0]!.adminToken);
    for (const i of [1, 2])
      await until(async () => ((await view(i)).forwarding.some((f) => f.id === reg.body.id) ? undefined : true), 5000);
    // Quiet afterwards: only keepalives flow (no update ping-pong).
    const before = (await view(1)).peers.reduce((n, p) => n + p.messagesIn, 0);
    await new Promise((r) => setTimeout(r, 1500));
    const after = (await view(1)).peers.reduce((n, p) => n + p.messagesIn, 0);
    expect(after - before).toBeLessThanOrEqual(6);
  });
});
