import { Gauge, type Registry } from 'prom-client';

/** Sources for the domain gauges; each is read when Prometheus scrapes. */
export interface DomainSources {
  agentsByStatus(): Promise<Record<string, number>>;
  reachableAgents(): number;
  zoneSerial(): number;
  feedSeq(): number;
  caCounters(): Record<string, number>;
  /** Good certificates whose notAfter is within the given number of days. */
  certificatesExpiringWithin(days: number): Promise<number>;
}

export function registerDomainMetrics(registry: Registry, src: DomainSources): void {
  new Gauge({
    name: 'ans_agents',
    help: 'Agents by lifecycle status',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const [status, n] of Object.entries(await src.agentsByStatus())) this.set({ status }, n);
    },
  });
  new Gauge({
    name: 'ans_agents_reachable',
    help: 'Active agents not known to be offline (what resolve and the gateway may use)',
    registers: [registry],
    collect() {
      this.set(src.reachableAgents());
    },
  });
  new Gauge({
    name: 'ans_dns_zone_serial',
    help: 'SOA serial of the served zone',
    registers: [registry],
    collect() {
      this.set(src.zoneSerial());
    },
  });
  new Gauge({
    name: 'ans_change_feed_seq',
    help: 'Last change sequence applied to the projections',
    registers: [registry],
    collect() {
      this.set(src.feedSeq());
    },
  });
  new Gauge({
    name: 'ans_ca_operations',
    help: 'CA operations since start (issued, revoked, OCSP responses, CRL builds)',
    labelNames: ['op'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [op, n] of Object.entries(src.caCounters())) this.set({ op }, n);
    },
  });
  new Gauge({
    name: 'ans_certificates_expiring',
    help: 'Good agent certificates expiring within the window',
    labelNames: ['within'] as const,
    registers: [registry],
    async collect() {
      this.set({ within: '7d' }, await src.certificatesExpiringWithin(7));
      this.set({ within: '1d' }, await src.certificatesExpiringWithin(1));
    },
  });
}
