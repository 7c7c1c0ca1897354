import { describe, expect, it } from 'vitest';
import { policyCli, type AdminCall } from '../../src/gateway/index.js';

describe('policy CLI support', () => {
  it('maps commands to the admin API and pages through policies', async () => {
    const calls: [string, string, unknown][] = [];
    const pages = [
      { items: [{ id: 'p1', caller: '*', target: '*', effect: 'deny', createdAt: 'x' }], next: 'p1' },
      { items: [{ id: 'p2', caller: 'a.z', target: '*.z', effect: 'allow', createdAt: 'y' }], next: null },
    ];
    const call: AdminCall = async <T>(method: string, path: string, body?: unknown) => {
      calls.push([method, path, body]);
      if (method === 'GET' && path.startsWith('/v1/policies')) return pages.shift() as T;
      return { ok: true } as T;
    };
    const cli = policyCli({ call });
    expect((await cli.list()).map((p) => p.id)).toEqual(['p1', 'p2']);
    await cli.add('*.home.internal', '*.agents.internal', 'allow');
    await cli.remove('p1');
    await cli.decide('apv_1', 'deny');
    expect(() => cli.add('a', 'b', 'maybe')).toThrow(/allow or deny/);
    expect(calls).toEqual([
      ['GET', '/v1/policies?limit=1000', undefined],
      ['GET', '/v1/policies?limit=1000&cursor=p1', undefined],
      ['POST', '/v1/policies', { caller: '*.home.internal', target: '*.agents.internal', effect: 'allow' }],
      ['DELETE', '/v1/policies/p1', undefined],
      ['POST', '/v1/approvals/apv_1/deny', undefined],
    ]);
  });
});
