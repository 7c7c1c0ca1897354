import { describe, expect, it } from 'vitest';
import { encodeBatch, expandCalls, type CallRecord } from '../../src/gateway/audit.js';

const call = (over: Partial<CallRecord>): CallRecord => ({
  caller: 'a.agents.internal',
  callerId: 'id-a',
  target: 'b.agents.internal',
  targetId: 'id-b',
  skill: undefined,
  method: 'GET',
  path: '/gw/b.agents.internal/x',
  status: 200,
  failure: undefined,
  bytesIn: 0,
  bytesOut: 12,
  ms: 1.234,
  at: 1_700_000_000_000,
  ...over,
});

describe('audit batch encoding', () => {
  it('round-trips every call, sharing repeated keys', () => {
    const calls = [
      call({}),
      call({ at: 1_700_000_000_005, status: 503, failure: 'connect', ms: 0.5 }),
      call({
        at: 1_700_000_000_009,
        caller: 'c.agents.internal',
        callerId: 'id-c',
        skill: 'unlock',
        method: 'POST',
        bytesIn: 77,
      }),
      call({ at: 1_700_000_000_010 }),
    ];
    const d = encodeBatch(calls);
    expect(d.count).toBe(4);
    expect(d.keys.split('\n')).toHaveLength(2);
    expect(expandCalls(d)).toEqual(calls);
    expect(expandCalls(JSON.parse(JSON.stringify(d)))).toEqual(calls);
  });
});
