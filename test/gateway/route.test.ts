import { describe, expect, it } from 'vitest';
import { checkRest, inZone, parseGatewayUrl, toGatewayUrl, upstreamPath } from '../../src/gateway/index.js';

const Z = 'agents.internal';

describe('parseGatewayUrl', () => {
  it.each([
    ['/gw/weather.agents.internal/a/b?x=1', 'weather.agents.internal', 'a/b', '?x=1'],
    ['/gw/Weather.AGENTS.internal./a', 'weather.agents.internal', 'a', ''],
    ['/gw/weather.agents.internal', 'weather.agents.internal', '', ''],
    ['/gw/weather.agents.internal/', 'weather.agents.internal', '', ''],
    [
      '/gw/weather.agents.internal/.well-known/agent-card.json',
      'weather.agents.internal',
      '.well-known/agent-card.json',
      '',
    ],
    ['/gw/deep.sub.agents.internal/x%20y', 'deep.sub.agents.internal', 'x%20y', ''],
    ['/gw/w.agents.internal/a/..b/c..', 'w.agents.internal', 'a/..b/c..', ''],
  ])('%s -> %s %s', (url, fqdn, rest, search) => {
    expect(parseGatewayUrl(url, Z)).toEqual({ ok: true, fqdn, rest, search });
  });

  it.each([
    ['/gw/weather.example.com/a', 404, 'GW_ERR_OUTSIDE_ZONE'],
    ['/gw/agents.internal/a', 404, 'GW_ERR_OUTSIDE_ZONE'],
    ['/gw/evilagents.internal/a', 404, 'GW_ERR_OUTSIDE_ZONE'],
    ['/gw/bad_name.agents.internal/a', 400, 'GW_ERR_BAD_NAME'],
    ['/gw/-x.agents.internal/a', 400, 'GW_ERR_BAD_NAME'],
    ['/gw//a', 400, 'GW_ERR_BAD_NAME'],
    ['/gw/%zz.agents.internal/a', 400, 'GW_ERR_BAD_NAME'],
    ['/gw/w.agents.internal/../x', 400, 'GW_ERR_BAD_PATH'],
    ['/gw/w.agents.internal/a/./b', 400, 'GW_ERR_BAD_PATH'],
    ['/gw/w.agents.internal/a/%2e%2E/b', 400, 'GW_ERR_BAD_PATH'],
    ['/gw/w.agents.internal/a%2fb', 400, 'GW_ERR_BAD_PATH'],
    ['/gw/w.agents.internal/a%5cb', 400, 'GW_ERR_BAD_PATH'],
    ['/gw/w.agents.internal/a\\..\\b', 400, 'GW_ERR_BAD_PATH'],
    ['/gw/w.agents.internal/a%00', 400, 'GW_ERR_BAD_PATH'],
    ['/gw/w.agents.internal/a%0d%0aX:%201', 400, 'GW_ERR_BAD_PATH'],
    ['/gw/w.agents.internal/a\r\nX: 1', 400, 'GW_ERR_BAD_PATH'],
    ['/gw/w.agents.internal/%E0%A4%A', 400, 'GW_ERR_BAD_PATH'],
  ])('%s -> %i %s', (url, status, code) => {
    const r = parseGatewayUrl(url, Z);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.status).toBe(status);
      expect(r.code).toBe(code);
    }
  });

  it('inZone needs a label boundary', () => {
    expect(inZone('a.agents.internal', Z)).toBe(true);
    expect(inZone('xagents.internal', Z)).toBe(false);
    expect(inZone('agents.internal', Z)).toBe(false);
  });

  it('checkRest accepts ordinary paths', () => {
    expect(checkRest('a/b/c.json')).toBeUndefined();
    expect(checkRest('a//b/')).toBeUndefined();
  });
});

describe('upstreamPath joins with exactly one slash', () => {
  it.each([
    ['/a2a', 'x/y', '?q=1', '/a2a/x/y?q=1'],
    ['/a2a/', 'x', '', '/a2a/x'],
    ['', 'x', '', '/x'],
    ['/a2a', '', '', '/a2a'],
    ['', '', '?a', '/?a'],
    ['/mcp', '', '?s=1', '/mcp?s=1'],
  ])('%s + %s', (base, rest, search, want) => {
    expect(upstreamPath(base, rest, search)).toBe(want);
  });
});

describe('toGatewayUrl', () => {
  const eps = ['http://10.0.0.5:8443/a2a', 'http://10.0.0.5:8443/a2a/v2', 'http://10.0.0.6:9000'];
  const gw = 'https://ans.example/gw/w.agents.internal/';
  it.each([
    ['http://10.0.0.5:8443/a2a', gw],
    ['http://10.0.0.5:8443/a2a/', gw],
    ['http://10.0.0.5:8443/a2a/tasks/1?x=2', `${gw}tasks/1?x=2`],
    ['http://10.0.0.5:8443/a2a/v2/x', `${gw}x`],
    ['http://10.0.0.6:9000/p', `${gw}p`],
  ])('%s', (u, want) => expect(toGatewayUrl(u, eps, gw)).toBe(want));
  it('leaves foreign URLs alone', () => {
    expect(toGatewayUrl('https://elsewhere.example/x', eps, gw)).toBeUndefined();
    expect(toGatewayUrl('http://10.0.0.5:8443/a2axyz', eps, gw)).toBeUndefined();
  });
});
