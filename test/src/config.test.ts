import { describe, expect, it } from 'vitest';
import { buildConfig, ConfigError } from '../../src/config/index.js';

describe('config', () => {
  it('has the documented defaults', () => {
    const c = buildConfig({}, {});
    expect(c).toMatchObject({
      zone: 'agents.internal.',
      dnsPort: 5300,
      httpPort: 8080,
      host: '127.0.0.1',
      publicUrl: 'http://127.0.0.1:8080',
      demo: false,
      databaseUrl: undefined,
      heartbeatIntervalMs: 30_000,
      certValidityDays: 30,
      auditRetentionDays: 0,
      embedder: 'use',
    });
    expect(c.dataDir.endsWith('/.ans')).toBe(true);
  });

  it('takes flags over ANS_* env over defaults, and lists from comma-separated env', () => {
    const env = {
      ANS_HTTP_PORT: '9000',
      ANS_DNS_PORT: '5353',
      ANS_NOTIFY: '127.0.0.1:53, 127.0.0.2:53',
      DATABASE_URL: 'postgres://x/y',
    };
    const c = buildConfig({ httpPort: '9100' }, env);
    expect(c.httpPort).toBe(9100);
    expect(c.dnsPort).toBe(5353);
    expect(c.notify).toEqual(['127.0.0.1:53', '127.0.0.2:53']);
    expect(c.databaseUrl).toBe('postgres://x/y');
    expect(c.publicUrl).toBe('http://127.0.0.1:9100');
  });

  it('adds the trailing dot to the zone and lower-cases it', () => {
    expect(buildConfig({ zone: 'Home.Internal' }, {}).zone).toBe('home.internal.');
  });

  it.each([
    [{ httpPort: '70000' }, /--http-port/],
    [{ httpPort: 'abc' }, /--http-port/],
    [{ zone: 'bad_zone!' }, /--zone/],
    [{ host: 'example.com' }, /--host/],
    [{ host: '0.0.0.0' }, /HTTPS only/],
    [{ publicUrl: 'ftp://x' }, /--public-url/],
    [{ embedder: 'gpt' }, /--embedder/],
    [{ embedder: 'transformers' }, /--model-dir/],
    [{ tsigKey: ['xfr:hmac-md5:abc='] }, /--tsig-key/],
    [{ certValidityDays: '500' }, /--cert-validity-days/],
    [{ auditRetention: '-1' }, /--audit-retention/],
    [{ tlsCert: 'a.pem' }, /--tls-key/],
  ])('rejects %o', (raw, msg) => {
    expect(() => buildConfig(raw, {})).toThrow(ConfigError);
    expect(() => buildConfig(raw, {})).toThrow(msg);
  });
});
