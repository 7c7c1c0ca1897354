/**
 * Gateway settings as `ans serve` flags (flags > ANS_* env > defaults), validated at start-up,
 * with `PUT /v1/gateway/settings` still changing them at run time.
 */
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig, ConfigError } from '../../src/config/index.js';
import { DEFAULT_SETTINGS } from '../../src/gateway/index.js';
import { GatewaySettingsSchema } from '../../src/gateway/settings.js';
import { client } from '../helpers/api.js';
import { runCli, startServer, tempDir, type RunningServer } from '../helpers/server.js';
import { enrol, upstream, type TestAgent, type Upstream } from './helpers.js';

const FLAGS = {
  gatewayConnectTimeoutMs: 'connectTimeoutMs',
  gatewayFirstByteTimeoutMs: 'firstByteTimeoutMs',
  gatewayIdleTimeoutMs: 'idleTimeoutMs',
  gatewayBodyIdleMs: 'requestBodyIdleMs',
  gatewayApprovalTimeoutMs: 'approvalTimeoutMs',
  gatewayBodyLimit: 'bodyLimit',
  gatewayRate: 'ratePerMinute',
  gatewayBurst: 'rateBurst',
} as const;

describe('gateway flags in the config', () => {
  it("defaults to the gateway's own defaults", () => {
    const g = buildConfig({}, {}).gateway;
    for (const key of Object.values(FLAGS)) expect(g[key]).toBe(DEFAULT_SETTINGS[key]);
  });

  it('takes flags over ANS_* env over defaults', () => {
    const c = buildConfig(
      { gatewayBodyLimit: '4096', gatewayRate: '120' },
      { ANS_GATEWAY_BODY_LIMIT: '8192', ANS_GATEWAY_CONNECT_TIMEOUT_MS: '750' },
    );
    expect(c.gateway).toMatchObject({ bodyLimit: 4096, ratePerMinute: 120, connectTimeoutMs: 750 });
    expect(c.gateway.firstByteTimeoutMs).toBe(DEFAULT_SETTINGS.firstByteTimeoutMs);
  });

  it.each([
    [{ gatewayConnectTimeoutMs: '0' }, /--gateway-connect-timeout-ms/],
    [{ gatewayConnectTimeoutMs: '120001' }, /--gateway-connect-timeout-ms/],
    [{ gatewayFirstByteTimeoutMs: '5s' }, /--gateway-first-byte-timeout-ms/],
    [{ gatewayIdleTimeoutMs: '-1' }, /--gateway-idle-timeout-ms/],
    [{ gatewayBodyIdleMs: '1.5' }, /--gateway-body-idle-ms/],
    [{ gatewayApprovalTimeoutMs: '86400001' }, /--gateway-approval-timeout-ms/],
    [{ gatewayBodyLimit: '1023' }, /--gateway-body-limit/],
    [{ gatewayRate: '0' }, /--gateway-rate/],
    [{ gatewayBurst: '1000001' }, /--gateway-burst/],
  ])('rejects %o', (raw, msg) => {
    expect(() => buildConfig(raw, {})).toThrow(ConfigError);
    expect(() => buildConfig(raw, {})).toThrow(msg);
  });

  it('rejects a bad value from the environment, naming the flag', () => {
    expect(() => buildConfig({}, { ANS_GATEWAY_BURST: 'lots' })).toThrow(/--gateway-burst/);
  });

  it('accepts exactly the range the settings API accepts', () => {
    for (const [flag, key] of Object.entries(FLAGS)) {
      for (const edge of ['min', 'max'] as const) {
        const schema = GatewaySettingsSchema.properties[key] as unknown as { minimum: number; maximum: number };
        const v = edge === 'min' ? schema.minimum : schema.maximum;
        const c = buildConfig({ [flag]: String(v) }, {});
        expect(c.gateway[key]).toBe(v);
        expect(Value.Check(GatewaySettingsSchema, { [key]: c.gateway[key] })).toBe(true);
        const out = edge === 'min' ? v - 1 : v + 1;
        expect(() => buildConfig({ [flag]: String(out) }, {})).toThrow(ConfigError);
      }
    }
  });

  it('makes ans serve exit 2 with the message on a bad gateway flag', async () => {
    const r = await runCli(['serve', '--data-dir', tempDir(), '--gateway-body-limit', '12'], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--gateway-body-limit must be an integer from 1024/);
  });

  it('lists the gateway flags in --help', async () => {
    const r = await runCli(['serve', '--help']);
    expect(r.stdout).toMatch(/--gateway-body-limit <BYTES>/);
    expect(r.stdout).toMatch(/ANS_GATEWAY_CONNECT_TIMEOUT_MS/);
  });
});

describe('gateway flags in a running ans serve', () => {
  let s: RunningServer;
  let up: Upstream;
  let caller: TestAgent;
  let target: TestAgent;

  beforeAll(async () => {
    s = await startServer({
      args: ['--gateway-body-limit', '2048', '--gateway-burst', '3', '--gateway-rate', '1'],
      env: { ANS_GATEWAY_FIRST_BYTE_TIMEOUT_MS: '400' },
    });
    up = await upstream((req, res, body) => {
      if (req.url?.includes('slow')) {
        setTimeout(() => res.end('late'), 1500);
        return;
      }
      res.end(`got ${body.length}`);
    });
    caller = await enrol(s.url, s.adminToken, 'caller', {
      endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/' }],
    });
    target = await enrol(s.url, s.adminToken, 'target', { endpoints: [{ protocol: 'http', url: `${up.url}/api` }] });
  });
  afterAll(async () => {
    await s?.stop();
    await up?.close();
  });

  it('starts with the flag and env values, and PUT /v1/gateway/settings still changes them', async () => {
    const api = client(s.url);
    const g = await api.get<Record<string, unknown>>('/v1/gateway/settings', s.adminToken);
    expect(g.body).toMatchObject({ bodyLimit: 2048, rateBurst: 3, ratePerMinute: 1, firstByteTimeoutMs: 400 });
    const token = await caller.token();
    const post = () =>
      fetch(`${s.url}/gw/${target.fqdn}/x`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: 'x'.repeat(3000),
      });
    // bodyLimit from the flag
    const big = await post();
    expect(big.status).toBe(413);
    expect(((await big.json()) as { code: string }).code).toBe('GW_ERR_BODY_TOO_LARGE');
    // first-byte timeout from the environment
    const slow = await fetch(`${s.url}/gw/${target.fqdn}/slow`, { headers: { authorization: `Bearer ${token}` } });
    expect(slow.status).toBe(504);
    // the burst of 3 is spent (2 calls so far, this is the 3rd); the 4th is limited
    await fetch(`${s.url}/gw/${target.fqdn}/x`, { headers: { authorization: `Bearer ${token}` } });
    const limited = await fetch(`${s.url}/gw/${target.fqdn}/x`, { headers: { authorization: `Bearer ${token}` } });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // run time: an admin raises the limits
    const put = await api.put(
      '/v1/gateway/settings',
      { bodyLimit: 4096, rateBurst: 1000, ratePerMinute: 100000 },
      s.adminToken,
    );
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ bodyLimit: 4096, firstByteTimeoutMs: 400 });
    const ok = await post();
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('got 3000');
  });
});
