/**
 * A secondary copy of another server's zone (a federation peer's): fetched by AXFR, kept current
 * by IXFR when the primary sends NOTIFY or the SOA refresh timer fires, retried on the SOA retry
 * timer, and withdrawn (answers SERVFAIL) once the SOA expire time passes without a successful
 * refresh (RFC 1034 4.3.5, RFC 1996). The zone is handed to the answering engine whole after each
 * change; queries never see a half-applied transfer.
 */
import { isIP } from 'node:net';
import { DNS_ERR_BAD_OPTION } from './errors.js';
import { serialGt } from './serial.js';
import { transfer, soaFields, type Primary, type SoaFields } from './transfer-in.js';
import type { Keyring, Key } from './tsig.js';
import type { DnsLogger, SecondarySpec } from './types.js';
import { nameWireLength, type D2Resource } from './wire.js';
import { normalizeName, transferredRRs, Zone, type ApexConfig, type ZoneRR } from './zone.js';

/** Who may NOTIFY a secondary zone: the primary's IP, signed with the zone's key if it has one. */
export interface NotifyRule {
  apex: string;
  host: string;
  key?: string;
}

export function acceptsNotify(rule: NotifyRule, peer: string, keyName: string | null): boolean {
  return peer.replace(/^::ffff:/, '') === rule.host && (rule.key === undefined || keyName === rule.key);
}

/**
 * A zone as one buffer plus per-record metadata, for the DNS workers (IPC): zone records are views
 * into large shared slabs, which would otherwise be copied whole with every record.
 */
export interface PackedZone {
  cfg: ApexConfig;
  serial: number;
  bytes: Buffer;
  names: string[];
  types: number[];
  targets: (string | null)[];
  lens: number[];
}

export function packZone(zone: Zone): PackedZone {
  const rrs = [...zone.records()];
  return {
    cfg: zone.config,
    serial: zone.serial,
    bytes: Buffer.concat(rrs.map((r) => r.buf.subarray(r.off, r.off + r.len))),
    names: rrs.map((r) => r.name),
    types: rrs.map((r) => r.type),
    targets: rrs.map((r) => r.target ?? null),
    lens: rrs.map((r) => r.len),
  };
}

export function unpackZone(p: PackedZone): Zone {
  const bytes = Buffer.from(p.bytes);
  let off = 0;
  const rrs = p.names.map((name, i): ZoneRR => {
    const z: ZoneRR = { name, type: p.types[i]!, buf: bytes, off, len: p.lens[i]!, ownerLen: nameWireLength(name) };
    const target = p.targets[i];
    if (target) z.target = target;
    off += p.lens[i]!;
    return z;
  });
  return new Zone(p.cfg, p.serial, rrs);
}

/** `ZONE@IP:PORT[:KEYNAME]` (the --secondary flag). */
export function parseSecondary(spec: string): SecondarySpec {
  const m = /^([^@\s]+)@(\[[0-9a-f:.]+\]|[0-9.]+):(\d{1,5})(?::([^:\s]+))?$/i.exec(spec.trim());
  const host = m?.[2]?.replace(/^\[|\]$/g, '') ?? '';
  if (!m || isIP(host) === 0 || Number(m[3]) < 1 || Number(m[3]) > 65535)
    throw DNS_ERR_BAD_OPTION(`secondary "${spec}": expected ZONE@IP:PORT[:TSIGKEY]`);
  return { zone: normalizeName(m[1]!), primary: `${host}:${m[3]}`, ...(m[4] ? { key: m[4] } : {}) };
}

/** Where a secondary publishes its zone: the whole zone, or null when it has none (or it expired). */
export type ZoneSink = (apex: string, zone: Zone | null) => void;

/** Before the first transfer we know no SOA timers: retry from 1 s, doubling to 60 s. */
const BOOT_RETRY_MS = [1000, 60_000] as const;

export class Secondary {
  readonly apex: string;
  private readonly primary: Primary;
  private readonly key: Key | undefined;
  private zone: Zone | null = null;
  private records = new Map<string, ZoneRR>();
  private soa: SoaFields | null = null;
  private expiresAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private again = false;
  private stopped = true;
  private bootRetry: number = BOOT_RETRY_MS[0];

  constructor(
    spec: SecondarySpec,
    keyring: Keyring,
    private readonly sink: ZoneSink,
    private readonly log: DnsLogger,
    private readonly now: () => number = Date.now,
  ) {
    this.apex = normalizeName(spec.zone);
    const [host, port] = [spec.primary.slice(0, spec.primary.lastIndexOf(':')), spec.primary.split(':').pop()];
    this.primary = { host, port: Number(port) };
    if (spec.key !== undefined) {
      this.key = keyring.get(spec.key);
      if (!this.key) throw DNS_ERR_BAD_OPTION(`secondary ${this.apex}: TSIG key "${spec.key}" is not configured`);
    }
  }

  get serial(): number | null {
    return this.zone ? this.zone.serial : null;
  }

  /** The zone as last transferred (null: none yet, or expired). */
  get current(): Zone | null {
    return this.zone;
  }

  get notifyRule(): NotifyRule {
    return { apex: this.apex, host: this.primary.host, ...(this.key ? { key: this.key.name } : {}) };
  }

  start(): void {
    this.stopped = false;
    this.sink(this.apex, null);
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * A NOTIFY for our zone arrived from `peer` (signed with `keyName`, if any). Accepted only from
   * the primary's address and, when a key is configured, only signed with it; then we refresh.
   */
  notified(peer: string, keyName: string | null): boolean {
    if (!acceptsNotify(this.notifyRule, peer, keyName)) return false;
    this.log.info({ zone: this.apex, peer }, 'dns: NOTIFY received, refreshing');
    this.schedule(0);
    return true;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    // Wake up for the refresh, or earlier if the zone expires first.
    const wait = this.zone ? Math.min(ms, Math.max(0, this.expiresAt - this.now())) : ms;
    this.timer = setTimeout(() => void this.refresh(), wait);
    this.timer.unref();
  }

  private async refresh(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.again = false;
    let next: number;
    try {
      await this.fetch();
      this.bootRetry = BOOT_RETRY_MS[0];
      next = this.soa!.refresh * 1000;
    } catch (e) {
      this.log.warn(
        { zone: this.apex, primary: `${this.primary.host}:${this.primary.port}`, err: (e as Error).message },
        'dns: secondary refresh failed',
      );
      if (this.soa) next = this.soa.retry * 1000;
      else {
        next = this.bootRetry;
        this.bootRetry = Math.min(this.bootRetry * 2, BOOT_RETRY_MS[1]);
      }
      this.expireIfDue();
    } finally {
      this.running = false;
    }
    this.schedule(this.again ? 0 : next);
  }

  private expireIfDue(): void {
    if (!this.zone || this.now() < this.expiresAt) return;
    this.log.warn({ zone: this.apex, serial: this.zone.serial }, 'dns: secondary zone expired');
    this.zone = null;
    this.soa = null;
    this.records.clear();
    this.sink(this.apex, null);
  }

  private async fetch(): Promise<void> {
    const held = this.zone ? { soa: this.zone.soa, serial: this.zone.serial } : null;
    const r = await transfer(this.apex, this.primary, held, this.key);
    const serial = soaFields(r.soa).serial;
    if (r.kind === 'current' || (held && !serialGt(serial, held.serial))) {
      if (held && serial !== held.serial)
        this.log.warn({ zone: this.apex, ours: held.serial, primary: serial }, 'dns: primary serial is behind ours');
      this.renewed(r.soa);
      return;
    }
    if (r.kind === 'full') {
      this.records = new Map(transferredRRs(r.records).map((z) => [rrKey(z), z]));
    } else {
      for (const d of r.diffs) {
        for (const z of transferredRRs(d.removed)) this.records.delete(rrKey(z));
        for (const z of transferredRRs(d.added)) this.records.set(rrKey(z), z);
      }
    }
    const [soaRR] = transferredRRs([r.soa]);
    const f = soaFields(r.soa);
    const zone = new Zone(
      {
        zone: this.apex,
        nsName: normalizeName(String(r.soa['primary'] ?? '')),
        nsAddresses: [],
        soaTtl: r.soa.ttl,
        nsTtl: r.soa.ttl,
        refresh: f.refresh,
        retry: f.retry,
        expire: f.expire,
        minimum: f.minimum,
      },
      serial,
      [soaRR!, ...this.records.values()],
    );
    this.zone = zone;
    this.renewed(r.soa);
    this.sink(this.apex, zone);
    this.log.info(
      { zone: this.apex, serial, kind: r.kind, records: this.records.size + 1 },
      r.kind === 'full' ? 'dns: secondary AXFR' : 'dns: secondary IXFR',
    );
  }

  private renewed(soa: D2Resource): void {
    const f = soaFields(soa);
    this.soa = f;
    this.expiresAt = this.now() + f.expire * 1000;
  }
}

/** Identity of a record for IXFR deletions: owner (any case), type, class and RDATA; not the TTL. */
function rrKey(z: ZoneRR): string {
  const b = z.buf;
  const o = z.off + z.ownerLen;
  return `${z.name}|${b.toString('latin1', o, o + 4)}|${b.toString('latin1', o + 8, z.off + z.len)}`;
}
