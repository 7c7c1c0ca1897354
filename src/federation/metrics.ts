/** Federation gauges for Prometheus (/metrics), read from the speaker when scraped. */
import { Gauge, type Registry } from 'prom-client';
import type { Federation } from './speaker.js';

const PER_PEER = [
  ['messages', 'messagesIn', 'messagesOut', 'AMSP messages exchanged with a peer in its current session'],
  ['bytes', 'bytesIn', 'bytesOut', 'Bytes of AMSP envelopes exchanged with a peer in its current session'],
  ['updates', 'updatesIn', 'updatesOut', 'AMSP UPDATEs exchanged with a peer in its current session'],
  ['withdraws', 'withdrawsIn', 'withdrawsOut', 'AMSP WITHDRAWs exchanged with a peer in its current session'],
] as const;

export function registerFederationMetrics(
  registry: Registry,
  fed: Federation,
  dns: { secondarySerials(): Record<string, number | null> },
): void {
  new Gauge({
    name: 'ans_amsp_sessions',
    help: 'AMSP sessions with peer gateways, by state',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      this.reset();
      this.set({ state: 'established' }, 0);
      for (const s of fed.sessions.values()) this.inc({ state: s.state });
    },
  });
  new Gauge({
    name: 'ans_amsp_routes',
    help: 'Routes to remote agents: best (in the forwarding table) and inapplicable (peer down)',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const v = fed.view();
      this.set({ state: 'best' }, v.forwarding.length);
      this.set({ state: 'inapplicable' }, v.inapplicable.length);
    },
  });
  for (const [name, inKey, outKey, help] of PER_PEER)
    new Gauge({
      name: `ans_amsp_peer_${name}`,
      help,
      labelNames: ['peer', 'direction'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const s of fed.sessions.values()) {
          this.set({ peer: s.uri, direction: 'in' }, s.stats[inKey]);
          this.set({ peer: s.uri, direction: 'out' }, s.stats[outKey]);
        }
      },
    });
  new Gauge({
    name: 'ans_amsp_events',
    help: 'Federation events since start (loops dropped, bad updates, relayed calls, refusals)',
    labelNames: ['event'] as const,
    registers: [registry],
    collect() {
      for (const [event, n] of Object.entries(fed.view().stats)) this.set({ event }, n);
    },
  });
  new Gauge({
    name: 'ans_dns_secondary_serial',
    help: 'SOA serial of each peer zone served as a DNS secondary (absent while it has none)',
    labelNames: ['zone'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [zone, serial] of Object.entries(dns.secondarySerials()))
        if (serial !== null) this.set({ zone }, serial);
    },
  });
}
