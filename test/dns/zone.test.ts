import { describe, expect, it } from 'vitest';
import { agentRecords, rrText, toZoneRRs, Zone } from '../../dns/zone.js';
import { lookup } from '../../dns/lookup.js';
import { ipAgent, weather } from './helpers.js';

const opts = { zone: 'agents.internal', publicUrl: 'http://127.0.0.1:8080', ttl: 60 };
const apex = {
  zone: 'agents.internal',
  nsName: 'ns1.agents.internal',
  nsAddresses: ['127.0.0.1'],
  soaTtl: 300,
  nsTtl: 3600,
  refresh: 300,
  retry: 60,
  expire: 1209600,
  minimum: 60,
};

describe('agent records (DESIGN.md section 4)', () => {
  it('projects an agent with a named host', () => {
    expect(agentRecords(weather, opts).records.map(rrText)).toMatchInlineSnapshot(`
      [
        "weather.agents.internal.	60	IN	TXT	"v=ans1; id=agt_weather; card=http://127.0.0.1:8080/v1/agents/agt_weather"",
        "_a2a._tcp.weather.agents.internal.	60	IN	SRV	10 1 8443 weather-host.example.",
        "_ans.weather.agents.internal.	60	IN	TXT	"v=ans1; version=1.2.0; p=a2a; mode=direct; url=https://weather-host.example:8443/a2a"",
        "_8443._tcp.weather.agents.internal.	60	IN	TLSA	3 1 1 ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB",
        "_mcp._tcp.weather.agents.internal.	60	IN	SRV	20 5 8443 weather-host.example.",
        "_ans.weather.agents.internal.	60	IN	TXT	"v=ans1; version=1.2.0; p=mcp; mode=direct; url=https://weather-host.example:8443/mcp"",
      ]
    `);
  });
  it('gives IP-literal endpoints A/AAAA at the FQDN and default ports', () => {
    const t = agentRecords(ipAgent, opts).records.map(rrText).join('\n');
    expect(t).toContain('local.agents.internal.\t60\tIN\tA\t10.1.2.3');
    expect(t).toContain('local.agents.internal.\t60\tIN\tAAAA\t2001:db8::7');
    expect(t).toContain('_a2a._tcp.local.agents.internal.\t60\tIN\tSRV\t10 1 443 local.agents.internal.');
    expect(t).not.toContain('TLSA');
  });
  it('skips agents outside the zone and bad endpoints with a reason', () => {
    expect(agentRecords({ ...weather, fqdn: 'weather.example.com' }, opts).problems[0]).toMatch(/not a name below/);
    const r = agentRecords({ ...weather, endpoints: [{ protocol: 'a2a', url: 'not a url' }] }, opts);
    expect(r.problems[0]).toMatch(/not a URL/);
    expect(r.records).toHaveLength(1);
  });
});

describe('lookup (pure)', () => {
  const z = new Zone(apex, 9);
  z.setOwner(weather.id, toZoneRRs(agentRecords(weather, opts).records));
  it.each([
    ['_a2a._tcp.weather.agents.internal', 33, 'HIT'],
    ['_tcp.weather.agents.internal', 33, 'NODATA'],
    ['weather.agents.internal', 1, 'NODATA'],
    ['nope.agents.internal', 1, 'NXDOMAIN'],
    ['a.b._tcp.weather.agents.internal', 1, 'NXDOMAIN'],
    ['agents.internal', 6, 'HIT'],
    ['example.com', 1, 'REFUSED'],
    ['agents.internalx', 1, 'REFUSED'],
  ] as const)('%s type %d -> %s', (name, type, want) => {
    expect(lookup(z, name, type).result).toBe(want);
  });
  it('forgets empty non-terminals when their last child goes', () => {
    const z2 = new Zone(apex, 1);
    z2.setOwner('x', toZoneRRs(agentRecords(weather, opts).records));
    expect(z2.isEnt('_tcp.weather.agents.internal')).toBe(true);
    z2.removeOwner('x');
    expect(lookup(z2, '_tcp.weather.agents.internal', 1).result).toBe('NXDOMAIN');
    expect(lookup(z2, 'weather.agents.internal', 16).result).toBe('NXDOMAIN');
    expect(lookup(z2, 'agents.internal', 2).result).toBe('HIT');
  });
});
