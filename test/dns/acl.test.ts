import { describe, expect, it } from 'vitest';
import { TransferAcl, isLoopback } from '../../dns/acl.js';

describe('transfer ACL', () => {
  const acl = new TransferAcl(['192.0.2.0/24', '2001:db8::5']);
  it.each([
    ['127.0.0.1', false, 'allow'],
    ['::1', false, 'allow'],
    ['::ffff:127.0.0.1', false, 'allow'],
    ['192.0.2.7', true, 'allow'],
    ['192.0.2.7', false, 'need-tsig'],
    ['::ffff:192.0.2.7', false, 'need-tsig'],
    ['2001:db8::5', true, 'allow'],
    ['198.51.100.1', true, 'deny'],
    ['198.51.100.1', false, 'deny'],
  ] as const)('%s signed=%s -> %s', (ip, signed, want) => {
    expect(acl.decide(ip, signed)).toBe(want);
  });
  it('denies everything but loopback when empty', () => {
    const empty = new TransferAcl();
    expect(empty.decide('10.0.0.1', true)).toBe('deny');
    expect(isLoopback('127.8.9.10')).toBe(true);
  });
  it('rejects bad entries', () => {
    expect(() => new TransferAcl(['nope'])).toThrow(/transferAcl/);
    expect(() => new TransferAcl(['10.0.0.0/33'])).toThrow(/transferAcl/);
  });
});
