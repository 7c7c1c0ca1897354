/**
 * dns/: the authoritative DNS server for the agent zone. The composition root feeds it registry
 * events (load at start-up, upsert/remove per change); it never reads the database.
 */
export type { ZoneAgent, DnsOptions, DnsLogger, TsigKey, SecondarySpec } from './types.js';
export { DnsServer } from './server.js';
export { parseTsigKey } from './tsig.js';
export { parseSecondary } from './secondary.js';
export { serialGt, serialLt, toSerial } from './serial.js';
export * as dnsErrors from './errors.js';
