/** The contract types the composition root codes against (re-exported by index.ts). */

export interface ZoneAgent {
  id: string; // agent id
  fqdn: string; // lower case, no trailing dot, e.g. 'weather.agents.internal'
  version: string; // semver of the card
  endpoints: { protocol: 'a2a' | 'mcp' | 'http'; url: string; priority?: number; weight?: number }[];
  spkiSha256: string | null; // hex SHA-256 of the agent certificate's SubjectPublicKeyInfo (TLSA 3 1 1)
}

export interface DnsLogger {
  info(o: object, msg?: string): void;
  warn(o: object, msg?: string): void;
  error(o: object, msg?: string): void;
}

export interface TsigKey {
  name: string;
  algorithm: 'hmac-sha256';
  secret: string; // base64
}

export interface DnsOptions {
  zone: string; // 'agents.internal.' (may carry trailing dot)
  host: string;
  port: number; // UDP and TCP on the same port
  publicUrl: string; // for the card TXT
  nsName?: string; // default `ns1.<zone>`
  nsAddresses?: string[];
  soa?: { refresh?: number; retry?: number; expire?: number; minimum?: number; ttl?: number };
  notify?: string[]; // secondaries 'ip:port'
  transferAcl?: string[]; // IPs/CIDRs allowed AXFR/IXFR (loopback always allowed)
  tsigKeys?: TsigKey[];
  workers?: number; // 0/1 = single process; N = N worker processes sharing the sockets
  log?: DnsLogger;
  // --- additions (optional) ---
  /** TTL of agent records (default 60 s). */
  agentTtl?: number;
  /** Journal length for IXFR, in changes (default 2000). */
  journalSize?: number;
  /** TCP: idle timeout per connection in ms (default 10 000). */
  tcpIdleMs?: number;
  /** TCP: most concurrent connections (default 1000); older idle ones are closed to make room. */
  tcpMaxConnections?: number;
  /** Other servers' zones we serve as a secondary (with workers, the primary process transfers them). */
  secondaries?: SecondarySpec[];
}

export interface SecondarySpec {
  zone: string;
  /** `IP:PORT` of the primary: transfers go there; NOTIFY is accepted from that IP. */
  primary: string;
  /** Name of one of `tsigKeys`: transfers and NOTIFYs must then be signed with it. */
  key?: string;
}
