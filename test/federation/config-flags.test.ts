/** The federation flags of `ans serve` as src/config reads and validates them. */
import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/index.js';

const KEY = 'xfr:hmac-sha256:c2VjcmV0c2VjcmV0c2VjcmV0';

describe('federation flags', () => {
  it('build the export policy, subscription limits, secondaries and SOA timers', () => {
    const c = buildConfig(
      {
        exportAllowDomain: ['Home.Internal.', '*.corp'],
        exportDenyTag: ['private'],
        exportRedact: ['description', 'skills'],
        maxSubscriptions: '50',
        subscriptionRate: '10',
        tsigKey: [KEY],
        secondary: ['car.internal.@127.0.0.1:5301:xfr'],
        soaExpire: '600',
      },
      { ANS_EXPORT_DENY_DOMAIN: 'secret.internal' },
    );
    expect(c.exportPolicy).toEqual({
      allowDomains: ['home.internal', '*.corp'],
      denyDomains: ['secret.internal'],
      allowTags: [],
      denyTags: ['private'],
      redact: ['description', 'skills'],
    });
    expect([c.maxSubscriptions, c.subscriptionsPerMinute]).toEqual([50, 10]);
    expect(c.secondaries).toEqual([{ zone: 'car.internal', primary: '127.0.0.1:5301', key: 'xfr' }]);
    expect(c.soa).toEqual({ refresh: 300, retry: 60, expire: 600 });
  });

  it('default to keepalives every 30 s, a 90 s hold time, no export filter and 256 topics at 600 a minute', () => {
    const c = buildConfig({}, {});
    expect([c.keepaliveMs, c.holdTimeMs, c.role]).toEqual([30_000, 90_000, 'l1']);
    expect(c.exportPolicy).toEqual({ allowDomains: [], denyDomains: [], allowTags: [], denyTags: [], redact: [] });
    expect([c.maxSubscriptions, c.subscriptionsPerMinute, c.secondaries]).toEqual([256, 600, []]);
  });

  it.each([
    [{ exportRedact: ['name'] }, /--export-redact must be one of description, skills, embedding/],
    [{ exportDenyDomain: ['not a zone'] }, /--export-deny-domain must be a zone/],
    [{ subscriptionRate: '0' }, /--subscription-rate/],
    [{ secondary: ['car.internal'] }, /--secondary: .*ZONE@IP:PORT/],
    [{ secondary: ['car.internal@127.0.0.1:53:nokey'] }, /TSIG key 'nokey' is not given with --tsig-key/],
    [{ secondary: ['agents.internal@127.0.0.1:53'] }, /is our own --zone/],
    [{ soaRetry: '-1' }, /--soa-retry/],
  ])('refuse %o with a message naming the flag', (flags, message) => {
    expect(() => buildConfig(flags, {})).toThrow(message);
  });
});
