/**
 * The zone: records projected from ZoneAgents (DESIGN.md section 4) and the in-memory tree they
 * live in. Pure data: no sockets, no packets beyond each record's own wire form.
 */
import { isIP } from 'node:net';
import { encodeResources, encodeRRs, nameWireLength, type D2Resource, type RR, type WireRR, TYPE } from './wire.js';
import type { ZoneAgent } from './types.js';

/** A record in the zone in wire form (computed once); SRV records keep their target for glue. */
export interface ZoneRR extends WireRR {
  target?: string;
}

export interface ApexConfig {
  zone: string; // lower case, no trailing dot
  nsName: string; // lower case, no trailing dot
  nsAddresses: string[];
  soaTtl: number;
  nsTtl: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}

export interface RecordOptions {
  zone: string;
  publicUrl: string;
  ttl: number;
}

/** Lower case, no trailing dot. */
export function normalizeName(name: string): string {
  let n = name.trim().toLowerCase();
  while (n.endsWith('.')) n = n.slice(0, -1);
  return n;
}

export function inZone(name: string, zone: string): boolean {
  return name === zone || name.endsWith('.' + zone);
}

function quoteTxt(s: string): string {
  // presentation form: split at 255 bytes, escape quote/backslash and non-printables
  const bytes = Buffer.from(s, 'utf8');
  const chunks: string[] = [];
  for (let i = 0; i < bytes.length || i === 0; i += 255) {
    let out = '';
    for (const b of bytes.subarray(i, Math.min(i + 255, bytes.length))) {
      if (b === 0x22 || b === 0x5c) out += '\\' + String.fromCharCode(b);
      else if (b < 0x20 || b > 0x7e) out += '\\' + String(b).padStart(3, '0');
      else out += String.fromCharCode(b);
    }
    chunks.push(`"${out}"`);
    if (bytes.length === 0) break;
  }
  return chunks.join(' ');
}

const fq = (n: string): string => (n === '' ? '.' : n + '.');

/** RFC 1035 presentation of one record (owner, TTL, class, type, RDATA). */
export function rrText(rr: RR): string {
  const head = `${fq(rr.name)}\t${rr.ttl}\tIN\t`;
  switch (rr.type) {
    case TYPE.A:
      return `${head}A\t${rr.address}`;
    case TYPE.AAAA:
      return `${head}AAAA\t${rr.address}`;
    case TYPE.NS:
      return `${head}NS\t${fq(rr.ns)}`;
    case TYPE.SOA:
      return `${head}SOA\t${fq(rr.mname)} ${fq(rr.rname)} ${rr.serial} ${rr.refresh} ${rr.retry} ${rr.expire} ${rr.minimum}`;
    case TYPE.TXT:
      return `${head}TXT\t${quoteTxt(rr.text)}`;
    case TYPE.SRV:
      return `${head}SRV\t${rr.priority} ${rr.weight} ${rr.port} ${fq(rr.target)}`;
    case TYPE.TLSA:
      return `${head}TLSA\t${rr.usage} ${rr.selector} ${rr.mtype} ${rr.data.toUpperCase()}`;
  }
}

/** Encodes records (one shared buffer) into zone records. */
export function toZoneRRs(rrs: readonly RR[]): ZoneRR[] {
  return zoneRRs(rrs, encodeRRs(rrs));
}

/** Records a primary sent us (decoded by dns2), as zone records under lower-cased names. */
export function transferredRRs(rs: readonly D2Resource[]): ZoneRR[] {
  const named = rs.map((r) => ({
    name: normalizeName(r.name),
    type: r.type,
    ...(r.type === TYPE.SRV && typeof r['target'] === 'string' ? { target: normalizeName(r['target']) } : {}),
  }));
  return zoneRRs(named, encodeResources(rs));
}

function zoneRRs(
  rrs: readonly { name: string; type: number; target?: string }[],
  enc: { buf: Buffer; spans: number[] },
): ZoneRR[] {
  return rrs.map((rr, i) => {
    const z: ZoneRR = {
      name: rr.name,
      type: rr.type,
      buf: enc.buf,
      off: enc.spans[2 * i]!,
      len: enc.spans[2 * i + 1]!,
      ownerLen: nameWireLength(rr.name),
    };
    if (rr.type === TYPE.SRV && 'target' in rr) z.target = rr.target;
    return z;
  });
}

function sameRR(a: ZoneRR, b: ZoneRR): boolean {
  return a.len === b.len && a.buf.compare(b.buf, b.off, b.off + b.len, a.off, a.off + a.len) === 0;
}

function u16(n: number | undefined, dflt: number): number {
  return Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 0xffff ? (n as number) : dflt;
}

export interface AgentRecords {
  records: RR[];
  /** endpoints or the agent itself that were skipped, with the reason */
  problems: string[];
}

/**
 * The records of one agent (DESIGN.md section 4):
 *  - `_<proto>._tcp.<fqdn>` SRV per endpoint (priority/weight default 10/1, port from the URL);
 *  - `_ans.<fqdn>` TXT per endpoint (GoDaddy ANS_TXT profile);
 *  - `<fqdn>` TXT with id and card URL;
 *  - `_<port>._tcp.<fqdn>` TLSA 3 1 1 per distinct endpoint port when the SPKI hash is known;
 *  - `<fqdn>` A/AAAA when an endpoint's host is an IP literal (the SRV then targets the FQDN).
 */
export function agentRecords(agent: ZoneAgent, opts: RecordOptions): AgentRecords {
  const problems: string[] = [];
  const fqdn = normalizeName(agent.fqdn);
  const ttl = opts.ttl;
  if (!fqdn || fqdn === opts.zone || !inZone(fqdn, opts.zone)) {
    return { records: [], problems: [`fqdn "${agent.fqdn}" is not a name below zone ${opts.zone}`] };
  }
  if (!/^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/.test(fqdn) || nameWireLength(fqdn) > 200) {
    return { records: [], problems: [`fqdn "${agent.fqdn}" is not a valid host name`] };
  }
  const base = opts.publicUrl.replace(/\/+$/, '');
  const out: RR[] = [
    { name: fqdn, ttl, type: TYPE.TXT, text: `v=ans1; id=${agent.id}; card=${base}/v1/agents/${agent.id}` },
  ];
  const ports = new Set<number>();
  const addrs = new Set<string>();
  for (const ep of agent.endpoints) {
    let url: URL;
    try {
      url = new URL(ep.url);
    } catch {
      problems.push(`endpoint "${ep.url}": not a URL`);
      continue;
    }
    if (!['a2a', 'mcp', 'http'].includes(ep.protocol)) {
      problems.push(`endpoint "${ep.url}": unknown protocol ${String(ep.protocol)}`);
      continue;
    }
    const scheme = url.protocol.replace(/:$/, '');
    const port = url.port ? Number(url.port) : scheme === 'http' || scheme === 'ws' ? 80 : 443;
    let host = url.hostname.toLowerCase();
    if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
    while (host.endsWith('.')) host = host.slice(0, -1);
    let target: string;
    const ipv = isIP(host);
    if (ipv === 4) {
      target = fqdn;
      if (!addrs.has(host)) out.push({ name: fqdn, ttl, type: TYPE.A, address: host });
      addrs.add(host);
    } else if (ipv === 6) {
      target = fqdn;
      if (!addrs.has(host)) out.push({ name: fqdn, ttl, type: TYPE.AAAA, address: host });
      addrs.add(host);
    } else if (/^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/.test(host) && host.length < 250) {
      target = host;
    } else {
      problems.push(`endpoint "${ep.url}": host is not a valid name`);
      continue;
    }
    out.push({
      name: `_${ep.protocol}._tcp.${fqdn}`,
      ttl,
      type: TYPE.SRV,
      priority: u16(ep.priority, 10),
      weight: u16(ep.weight, 1),
      port,
      target,
    });
    out.push({
      name: `_ans.${fqdn}`,
      ttl,
      type: TYPE.TXT,
      text: `v=ans1; version=${agent.version}; p=${ep.protocol}; mode=direct; url=${ep.url}`,
    });
    if (agent.spkiSha256 && !ports.has(port)) {
      ports.add(port);
      if (/^[0-9a-fA-F]{64}$/.test(agent.spkiSha256)) {
        out.push({
          name: `_${port}._tcp.${fqdn}`,
          ttl,
          type: TYPE.TLSA,
          usage: 3,
          selector: 1,
          mtype: 1,
          data: agent.spkiSha256.toLowerCase(),
        });
      } else problems.push('spkiSha256 is not 64 hex digits: no TLSA');
    }
  }
  // identical records (two endpoints with the same URL) appear once
  const seen = new Set<string>();
  const records = out.filter((r) => {
    const t =
      r.type === TYPE.SRV
        ? `${r.name} ${r.priority} ${r.weight} ${r.port} ${r.target}`
        : r.type === TYPE.TXT
          ? `${r.name} ${r.text}`
          : r.type === TYPE.A || r.type === TYPE.AAAA
            ? `${r.name} ${r.type} ${r.address}`
            : `${r.name} ${r.type}`;
    if (seen.has(t)) return false;
    seen.add(t);
    return true;
  });
  return { records, problems };
}

/** SOA, NS and glue at the apex. */
export function apexRecords(cfg: ApexConfig, serial: number): RR[] {
  const out: RR[] = [
    {
      name: cfg.zone,
      ttl: cfg.soaTtl,
      type: TYPE.SOA,
      mname: cfg.nsName,
      rname: `hostmaster.${cfg.zone}`,
      serial,
      refresh: cfg.refresh,
      retry: cfg.retry,
      expire: cfg.expire,
      minimum: cfg.minimum,
    },
    { name: cfg.zone, ttl: cfg.nsTtl, type: TYPE.NS, ns: cfg.nsName },
  ];
  if (inZone(cfg.nsName, cfg.zone)) {
    for (const a of cfg.nsAddresses) {
      const v = isIP(a);
      if (v === 4) out.push({ name: cfg.nsName, ttl: cfg.nsTtl, type: TYPE.A, address: a });
      else if (v === 6) out.push({ name: cfg.nsName, ttl: cfg.nsTtl, type: TYPE.AAAA, address: a });
    }
  }
  return out;
}

export interface Diff {
  removed: ZoneRR[];
  added: ZoneRR[];
}

/**
 * Names -> records, with empty non-terminals counted so NXDOMAIN and NODATA can be told apart.
 * Records are owned by an agent id ('' for the apex records).
 */
export class Zone {
  readonly apex: string;
  private readonly cfg: ApexConfig;
  private readonly nodes = new Map<string, ZoneRR[]>();
  /** proper ancestors (inside the zone) of existing names -> number of names below them */
  private readonly ents = new Map<string, number>();
  private readonly owners = new Map<string, ZoneRR[]>();
  private soaRR: ZoneRR;
  private _serial: number;
  /** bumps on every change; caches of encoded answers compare against it */
  version = 0;

  /** @param records a transferred zone's records, SOA first, instead of our own apex records */
  constructor(cfg: ApexConfig, serial: number, records?: ZoneRR[]) {
    this.cfg = cfg;
    this.apex = cfg.zone;
    this._serial = serial;
    const apexRRs = records ?? toZoneRRs(apexRecords(cfg, serial));
    this.soaRR = apexRRs[0]!;
    this.setOwner('', apexRRs);
  }

  get serial(): number {
    return this._serial;
  }

  get soa(): ZoneRR {
    return this.soaRR;
  }

  get config(): ApexConfig {
    return this.cfg;
  }

  get nsTarget(): string {
    return this.cfg.nsName;
  }

  get negativeTtl(): number {
    return Math.min(this.cfg.soaTtl, this.cfg.minimum);
  }

  setSerial(serial: number): { removed: ZoneRR; added: ZoneRR } {
    const old = this.soaRR;
    const next = toZoneRRs([apexRecords(this.cfg, serial)[0]!])[0]!;
    const list = this.nodes.get(this.apex)!;
    list[list.indexOf(old)] = next;
    const own = this.owners.get('')!;
    own[own.indexOf(old)] = next;
    this.soaRR = next;
    this._serial = serial;
    this.version++;
    return { removed: old, added: next };
  }

  private exists(name: string): boolean {
    return this.nodes.has(name) || this.ents.has(name);
  }

  /** `name` came into existence: count it as a child of its parent, and so on up while new. */
  private born(name: string): void {
    for (let n = name, p = parent(n, this.apex); p !== null; n = p, p = parent(p, this.apex)) {
      const had = this.exists(p);
      this.ents.set(p, (this.ents.get(p) ?? 0) + 1);
      if (had) return;
    }
  }

  /** `name` ceased to exist: uncount it, and so on up while its parent disappears too. */
  private died(name: string): void {
    for (let n = name, p = parent(n, this.apex); p !== null; n = p, p = parent(p, this.apex)) {
      const c = (this.ents.get(p) ?? 1) - 1;
      if (c > 0) {
        this.ents.set(p, c);
        return;
      }
      this.ents.delete(p);
      if (this.nodes.has(p)) return;
    }
  }

  private addRR(z: ZoneRR): void {
    const list = this.nodes.get(z.name);
    if (list) {
      list.push(z);
      return;
    }
    const existed = this.ents.has(z.name);
    this.nodes.set(z.name, [z]);
    if (!existed) this.born(z.name);
  }

  private removeRR(z: ZoneRR): void {
    const list = this.nodes.get(z.name);
    if (!list) return;
    const i = list.indexOf(z);
    if (i < 0) return;
    list.splice(i, 1);
    if (list.length > 0) return;
    this.nodes.delete(z.name);
    if (!this.ents.has(z.name)) this.died(z.name);
  }

  /** Replaces the records owned by `owner`; returns the diff (unchanged records are kept). */
  setOwner(owner: string, records: ZoneRR[]): Diff {
    const old = this.owners.get(owner);
    if (!old) {
      for (const z of records) this.addRR(z);
      if (records.length) {
        this.owners.set(owner, records);
        this.version++;
      }
      return { removed: [], added: records };
    }
    const removed = old.filter((z) => !records.some((n) => sameRR(n, z)));
    const added = records.filter((n) => !old.some((z) => sameRR(n, z)));
    for (const z of removed) this.removeRR(z);
    for (const z of added) this.addRR(z);
    const next = [...old.filter((z) => !removed.includes(z)), ...added];
    if (next.length) this.owners.set(owner, next);
    else this.owners.delete(owner);
    if (removed.length || added.length) this.version++;
    return { removed, added };
  }

  removeOwner(owner: string): Diff {
    return this.setOwner(owner, []);
  }

  hasOwner(owner: string): boolean {
    return this.owners.has(owner);
  }

  /** Records at a name (any type), or undefined when the name owns none. */
  node(name: string): readonly ZoneRR[] | undefined {
    return this.nodes.get(name);
  }

  /** True for an empty non-terminal (a name with no records but names below it). */
  isEnt(name: string): boolean {
    return !this.nodes.has(name) && this.ents.has(name);
  }

  get nameCount(): number {
    return this.nodes.size;
  }

  /** Every record, SOA first (the AXFR order, less the closing SOA). */
  *records(): Generator<ZoneRR> {
    yield this.soaRR;
    for (const list of this.nodes.values()) for (const z of list) if (z !== this.soaRR) yield z;
  }
}

function parent(name: string, apex: string): string | null {
  if (name === apex) return null;
  const i = name.indexOf('.');
  if (i < 0) return null;
  const p = name.slice(i + 1);
  return p.length >= apex.length && inZone(p, apex) ? p : null;
}
