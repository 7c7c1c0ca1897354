/** Registration is rate-limited per client address: 429 problem+json with Retry-After, nothing stored. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { card, client } from '../helpers/api.js';
import { opensslCsr } from '../helpers/pki.js';
import { startServer, type RunningServer } from '../helpers/server.js';

let s: RunningServer;
beforeAll(async () => {
  s = await startServer({ args: ['--register-rate', '3'] });
});
afterAll(async () => {
  await s?.stop();
});

it('answers the 4th registration in a minute with 429 + Retry-After and stores nothing', async () => {
  const api = client(s.url);
  const statuses: number[] = [];
  let last;
  for (let i = 0; i < 4; i++) {
    last = await api.post(`/v1/agents`, { card: card(`r${i}`), csr: opensslCsr(`r${i}.agents.internal`).csrPem });
    statuses.push(last.status);
  }
  expect(statuses).toEqual([202, 202, 202, 429]);
  expect(last!.headers.get('content-type')).toContain('application/problem+json');
  expect(last!.body['code']).toBe('HTTP_ERR_RATE_LIMITED');
  expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
  const list = await api.get<{ agents: { fqdn: string }[] }>('/v1/agents?limit=100', s.adminToken);
  expect(list.body.agents.map((a) => a.fqdn)).not.toContain('r3.agents.internal');
});
