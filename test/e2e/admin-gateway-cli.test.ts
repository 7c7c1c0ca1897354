/** `ans admin policy|approvals|graph` against a running server. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli, startServer, type RunningServer } from '../helpers/server.js';

let s: RunningServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.stop();
});

it('adds, lists and removes a gateway policy; shows approvals and the graph; refuses a bad effect', async () => {
  const opts = ['--server', s.url, '--token', s.adminToken];
  const add = await runCli([
    'admin',
    'policy',
    'add',
    '*.agents.internal.',
    'weather.agents.internal',
    'deny',
    ...opts,
  ]);
  expect(add.stderr).toBe('');
  const id = add.stdout.split(' ')[0]!;
  expect(add.stdout).toContain('*.agents.internal -> weather.agents.internal: deny');
  const list = await runCli(['admin', 'policy', 'list', ...opts]);
  expect(list.stdout).toContain(id);
  expect((await runCli(['admin', 'approvals', ...opts])).code).toBe(0);
  expect((await runCli(['admin', 'graph', '--json', ...opts])).stdout).toContain('"edges"');
  const bad = await runCli(['admin', 'policy', 'add', 'a', 'b', 'maybe', ...opts]);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toBe("ans: effect must be allow or deny, got 'maybe'\n");
  expect((await runCli(['admin', 'policy', 'remove', id, ...opts])).stdout).toContain(`removed ${id}`);
  expect((await runCli(['admin', 'policy', 'list', ...opts])).stdout).not.toContain(id);
});
