import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DnsServer, ZoneAgent } from '../../dns/index.js';
import { dig, flags, has, ipAgent, parse, query, rcode, sh, startServer, tcpAsk, udpAsk, weather } from './helpers.js';

const bigTxt: ZoneAgent = {
  id: 'agt_big',
  fqdn: 'big.agents.internal',
  version: '9.9.9',
  // 30 endpoints -> 30 _ans TXT records of ~120 bytes: over 1232 bytes on UDP
  endpoints: Array.from({ length: 30 }, (_, i) => ({
    protocol: 'http' as const,
    url: `https://big-host-${i}.example.org:${9000 + i}/path/that/is/rather/long/to/make/the/answer/large/${'x'.repeat(20)}`,
  })),
  spkiSha256: null,
};
const longTxt: ZoneAgent = {
  id: 'agt_' + 'l'.repeat(300), // the card TXT gets longer than 255 bytes
  fqdn: 'long.agents.internal',
  version: '1.0.0',
  endpoints: [],
  spkiSha256: null,
};

describe('DnsServer over real sockets', () => {
  let server: DnsServer;
  let port: number;
  beforeAll(async () => {
    ({ server, port } = await startServer([weather, ipAgent, bigTxt, longTxt], {}, 100));
  });
  afterAll(async () => {
    await server.stop();
  });

  it('answers SRV per endpoint with defaults and explicit priority/weight, AA set', async () => {
    const a = await dig(port, 'SRV', '_a2a._tcp.weather.agents.internal', '+noall', '+answer', '+comments');
    expect(a).toMatch(/flags: qr aa;/);
    expect(a).toMatch(/_a2a\._tcp\.weather\.agents\.internal\.\s+60\s+IN\s+SRV\s+10 1 8443 weather-host\.example\./);
    const m = await dig(port, 'SRV', '_mcp._tcp.weather.agents.internal', '+short');
    expect(m.trim()).toBe('20 5 8443 weather-host.example.');
  });

  it('answers the _ans TXT (ANS_TXT profile) and the card TXT', async () => {
    const ans = await dig(port, 'TXT', '_ans.weather.agents.internal', '+short');
    expect(ans).toContain('"v=ans1; version=1.2.0; p=a2a; mode=direct; url=https://weather-host.example:8443/a2a"');
    expect(ans).toContain('p=mcp;');
    const card = await dig(port, 'TXT', 'weather.agents.internal', '+short');
    expect(card.trim()).toBe('"v=ans1; id=agt_weather; card=http://127.0.0.1:8080/v1/agents/agt_weather"');
  });

  it('answers TLSA 3 1 1 at _<port>._tcp.<fqdn>', async () => {
    const t = await sh('kdig', [
      '@127.0.0.1',
      '-p',
      String(port),
      'TLSA',
      '_8443._tcp.weather.agents.internal',
      '+short',
    ]);
    expect(t.trim().replace(/\s/g, '').toLowerCase()).toBe('311' + 'ab'.repeat(32));
  });

  it('gives IP-literal endpoints A/AAAA at the FQDN and SRV targets the FQDN (with glue)', async () => {
    expect((await dig(port, 'A', 'local.agents.internal', '+short')).trim()).toBe('10.1.2.3');
    expect((await dig(port, 'AAAA', 'local.agents.internal', '+short')).trim()).toBe('2001:db8::7');
    const srv = await dig(port, 'SRV', '_http._tcp.local.agents.internal');
    expect(srv).toMatch(/SRV\s+10 1 8080 local\.agents\.internal\./);
    expect(srv).toMatch(/ADDITIONAL SECTION:[\s\S]*local\.agents\.internal\.\s+60\s+IN\s+A\s+10\.1\.2\.3/);
  });

  it('serves SOA and NS with glue at the apex', async () => {
    const soa = await dig(port, 'SOA', 'agents.internal', '+short');
    expect(soa.trim()).toBe('ns1.agents.internal. hostmaster.agents.internal. 100 300 60 1209600 60');
    const ns = await dig(port, 'NS', 'agents.internal');
    expect(ns).toMatch(/IN\s+NS\s+ns1\.agents\.internal\./);
    expect(ns).toMatch(/ns1\.agents\.internal\.\s+3600\s+IN\s+A\s+127\.0\.0\.1/);
  });

  it('NXDOMAIN vs NODATA (empty non-terminal), both with the SOA in authority (RFC 2308)', async () => {
    const nx = await dig(port, 'A', 'nobody.agents.internal');
    expect(nx).toMatch(/status: NXDOMAIN/);
    expect(nx).toMatch(/flags: qr aa;/);
    expect(nx).toMatch(/AUTHORITY SECTION:\nagents\.internal\.\s+60\s+IN\s+SOA/);
    const ent = await dig(port, 'A', '_tcp.weather.agents.internal');
    expect(ent).toMatch(/status: NOERROR/);
    expect(ent).toMatch(/ANSWER: 0, AUTHORITY: 1/);
    const nodata = await dig(port, 'AAAA', 'weather.agents.internal');
    expect(nodata).toMatch(/status: NOERROR/);
    expect(nodata).toMatch(/AUTHORITY SECTION:\nagents\.internal\.\s+60\s+IN\s+SOA/);
    const below = await dig(port, 'A', 'x._tcp.weather.agents.internal');
    expect(below).toMatch(/status: NXDOMAIN/);
  });

  it('REFUSED outside the zone, without AA', async () => {
    const r = await dig(port, 'A', 'example.com');
    expect(r).toMatch(/status: REFUSED/);
    expect(r).not.toMatch(/flags: qr aa/);
    const r2 = await dig(port, 'A', 'xagents.internal');
    expect(r2).toMatch(/status: REFUSED/);
  });

  it('preserves the case of the question and matches case-insensitively', async () => {
    const res = await udpAsk(port, query('_A2A._TCP.WeAtHeR.Agents.INTERNAL', 33));
    expect(res).not.toBeNull();
    const p = parse(res!);
    expect(p.questions[0]!.name).toBe('_A2A._TCP.WeAtHeR.Agents.INTERNAL');
    expect(p.answers).toHaveLength(1);
    expect(p.answers[0]!['target']).toBe('weather-host.example');
  });

  it('answers ANY minimally over UDP (RFC 8482)', async () => {
    const res = parse((await udpAsk(port, query('local.agents.internal', 255)))!);
    const types = new Set(res.answers.map((a) => a.type));
    expect(types.size).toBe(1);
    const tcp = parse((await tcpAsk(port, [query('local.agents.internal', 255)]))[0]!);
    expect(new Set(tcp.answers.map((a) => a.type)).size).toBeGreaterThan(1);
  });

  it('EDNS: echoes OPT with payload 1232 and the DO bit; BADVERS for version 1', async () => {
    const d = await dig(port, '+dnssec', 'SRV', '_a2a._tcp.weather.agents.internal');
    expect(d).toMatch(/EDNS: version: 0, flags: do; udp: 1232/);
    const plain = await dig(port, '+noedns', 'SRV', '_a2a._tcp.weather.agents.internal');
    expect(plain).not.toMatch(/OPT PSEUDOSECTION/);
    const bv = await sh('dig', ['@127.0.0.1', '-p', String(port), '+edns=1', '+noednsneg', 'SOA', 'agents.internal']);
    expect(bv).toMatch(/status: BADVERS/);
    expect(bv).toMatch(/EDNS: version: 0/);
  });

  it('truncates big UDP answers with TC=1 and keeps the OPT; TCP retry gets everything', async () => {
    const res = (await udpAsk(port, query('_ans.big.agents.internal', 16, { edns: { payload: 1232 } })))!;
    expect(flags(res).tc).toBe(true);
    const p = parse(res);
    expect(p.answers).toHaveLength(0);
    expect(p.additionals.some((r) => r.type === 41)).toBe(true);
    expect(res.length).toBeLessThanOrEqual(1232);
    const noEdns = (await udpAsk(port, query('_ans.big.agents.internal', 16)))!;
    expect(flags(noEdns).tc).toBe(true);
    expect(noEdns.length).toBeLessThanOrEqual(512);
    const viaDig = await dig(port, 'TXT', '_ans.big.agents.internal');
    expect(viaDig).toMatch(/Truncated, retrying in TCP mode/);
    expect(viaDig).toMatch(/ANSWER: 30,/);
  });

  it('splits TXT data over 255 bytes into several strings', async () => {
    const res = parse((await tcpAsk(port, [query('long.agents.internal', 16)]))[0]!);
    const data = res.answers[0]!['data'] as string[];
    expect(data.length).toBe(3);
    expect(data.every((s) => s.length <= 255)).toBe(true);
    expect(data[0]!.length).toBe(255);
    expect(data.join('')).toBe(`v=ans1; id=${longTxt.id}; card=http://127.0.0.1:8080/v1/agents/${longTxt.id}`);
  });

  it('NOTIMP for unknown opcodes; drops QR=1; FORMERR for QDCOUNT 2', async () => {
    const upd = (await udpAsk(port, query('agents.internal', 6, { flags: 5 << 11 })))!;
    expect(rcode(upd)).toBe(4);
    expect(await udpAsk(port, query('agents.internal', 6, { flags: 0x8000 }), 500)).toBeNull();
    const two = query('agents.internal', 6);
    two.writeUInt16BE(2, 4);
    const res = (await udpAsk(port, Buffer.concat([two, two.subarray(12)])))!;
    expect(rcode(res)).toBe(1);
  });

  it('answers several queries on one TCP connection', async () => {
    const out = await tcpAsk(port, [
      query('weather.agents.internal', 16, { id: 1 }),
      query('nobody.agents.internal', 1, { id: 2 }),
      query('agents.internal', 6, { id: 3 }),
    ]);
    expect(out.map((b) => b.readUInt16BE(0))).toEqual([1, 2, 3]);
    expect(out.map(rcode)).toEqual([0, 3, 0]);
  });

  it('upsert and remove bump the serial and change answers', async () => {
    const before = server.serial;
    server.upsert({ ...weather, id: 'agt_new', fqdn: 'news.agents.internal' }, 101);
    expect(server.serial).toBe(101);
    expect((await dig(port, 'SRV', '_a2a._tcp.news.agents.internal', '+short')).trim()).toBe(
      '10 1 8443 weather-host.example.',
    );
    server.upsert(
      {
        ...weather,
        id: 'agt_new',
        fqdn: 'news.agents.internal',
        endpoints: [{ protocol: 'mcp', url: 'https://n.example/' }],
      },
      102,
    );
    expect((await dig(port, 'SRV', '_a2a._tcp.news.agents.internal', '+short')).trim()).toBe('');
    expect((await dig(port, 'SRV', '_mcp._tcp.news.agents.internal', '+short')).trim()).toBe('10 1 443 n.example.');
    server.remove('agt_new', 103);
    expect(server.serial).toBe(103);
    expect(await dig(port, 'TXT', 'news.agents.internal')).toMatch(/NXDOMAIN/);
    expect((await dig(port, 'SOA', 'agents.internal', '+short')).split(' ')[2]).toBe('103');
    expect(before).toBe(100);
  });

  it('TLSA matches the SPKI hash openssl computes for a certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ans-tlsa-'));
    const key = join(dir, 'k.pem');
    const crt = join(dir, 'c.pem');
    await sh('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      crt,
      '-subj',
      '/CN=tlsa.agents.internal',
      '-days',
      '1',
    ]);
    const pub = await sh('openssl', ['x509', '-in', crt, '-pubkey', '-noout']);
    writeFileSync(join(dir, 'pub.pem'), pub);
    await sh('openssl', [
      'pkey',
      '-pubin',
      '-in',
      join(dir, 'pub.pem'),
      '-outform',
      'DER',
      '-out',
      join(dir, 'pub.der'),
    ]);
    const hash = (await sh('sha256sum', [join(dir, 'pub.der')])).split(' ')[0]!;
    server.upsert(
      {
        id: 'agt_tlsa',
        fqdn: 'tlsa.agents.internal',
        version: '1.0.0',
        endpoints: [{ protocol: 'a2a', url: 'https://tlsa.example:4433/' }],
        spkiSha256: hash,
      },
      104,
    );
    const t = await sh('kdig', ['@127.0.0.1', '-p', String(port), 'TLSA', '_4433._tcp.tlsa.agents.internal', '+short']);
    expect(t.trim().replace(/\s/g, '').toLowerCase()).toBe('311' + hash);
  });

  it('masterFile() passes kzonecheck', async () => {
    if (!has('kzonecheck')) {
      console.warn('SKIP: kzonecheck not installed');
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'ans-zone-'));
    const f = join(dir, 'agents.internal.zone');
    writeFileSync(f, server.masterFile());
    const out = await sh('kzonecheck', ['-o', 'agents.internal.', f]);
    expect(out).not.toMatch(/error/i);
  });
});
