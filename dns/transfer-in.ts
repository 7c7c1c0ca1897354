/**
 * The client side of a zone transfer: one IXFR (RFC 1995, with our SOA) or AXFR (RFC 5936) over
 * TCP to a primary, TSIG-signed when a key is given and every response message checked, the
 * records decoded by dns2 and sorted into "up to date", a full zone, or a chain of diffs.
 */
import { randomInt } from 'node:crypto';
import { connect } from 'node:net';
import { ResponseVerifier, signRequest, type Key } from './tsig.js';
import { encodeQuestion, parsePacket, rrBytes, CLASS_IN, RCODE, TYPE, type D2Resource, type WireRR } from './wire.js';

export interface Primary {
  host: string;
  port: number;
}

export interface SoaFields {
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}

export type TransferResult =
  | { kind: 'current'; soa: D2Resource }
  | { kind: 'full'; soa: D2Resource; records: D2Resource[] }
  | { kind: 'incremental'; soa: D2Resource; diffs: { removed: D2Resource[]; added: D2Resource[] }[] };

const MAX_RECORDS = 5_000_000;

export function soaFields(r: D2Resource): SoaFields {
  const n = (k: string): number => (typeof r[k] === 'number' ? (r[k] as number) : 0);
  return {
    serial: n('serial'),
    refresh: n('refresh'),
    retry: n('retry'),
    expire: n('expiration'),
    minimum: n('minimum'),
  };
}

const isSoa = (r: D2Resource | undefined): r is D2Resource => r?.type === TYPE.SOA;

/**
 * Sorts the answer records of a transfer, or returns null while they are incomplete.
 * `ours` is the serial we asked from (IXFR), or null for AXFR.
 */
export function planTransfer(rrs: readonly D2Resource[], ours: number | null): TransferResult | null | 'bad' {
  const first = rrs[0];
  if (!first) return null;
  if (!isSoa(first)) return 'bad';
  const serial = soaFields(first).serial;
  // A lone SOA answers an IXFR when we are current (or the primary is behind us: the caller
  // compares serials).
  if (rrs.length === 1) return ours !== null ? { kind: 'current', soa: first } : null;
  const second = rrs[1]!;
  // IXFR form: SOA(new), then per diff SOA(old) deletions SOA(new') additions, then SOA(new).
  if (ours !== null && isSoa(second) && soaFields(second).serial !== serial) {
    if (soaFields(second).serial !== ours) return 'bad';
    const diffs: { removed: D2Resource[]; added: D2Resource[] }[] = [];
    let i = 1;
    while (i < rrs.length) {
      const old = rrs[i]!;
      if (!isSoa(old)) return 'bad';
      if (soaFields(old).serial === serial)
        return i === rrs.length - 1 ? { kind: 'incremental', soa: first, diffs } : 'bad';
      const removed: D2Resource[] = [];
      for (i++; i < rrs.length && !isSoa(rrs[i]); i++) removed.push(rrs[i]!);
      if (i >= rrs.length) return null;
      const added: D2Resource[] = [];
      for (i++; i < rrs.length && !isSoa(rrs[i]); i++) added.push(rrs[i]!);
      diffs.push({ removed, added });
    }
    return null;
  }
  // AXFR form: SOA, records, SOA.
  const last = rrs.at(-1)!;
  if (!isSoa(last)) return null;
  if (soaFields(last).serial !== serial) return 'bad';
  const records = rrs.slice(1, -1);
  if (records.some(isSoa)) return 'bad';
  return { kind: 'full', soa: first, records };
}

function request(zone: string, soa: WireRR | null): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(randomInt(0x10000), 0);
  h.writeUInt16BE(1, 4);
  if (soa) h.writeUInt16BE(1, 8);
  const q = encodeQuestion({ name: zone, type: soa ? TYPE.IXFR : TYPE.AXFR, class: CLASS_IN });
  return Buffer.concat(soa ? [h, q, rrBytes(soa)] : [h, q]);
}

/**
 * Runs one transfer of `zone` from `primary`: IXFR from `held` (our SOA and its serial) when we
 * hold the zone, else AXFR.
 * Rejects on a refused or malformed answer, a bad TSIG, or no complete answer within `timeoutMs`.
 */
export function transfer(
  zone: string,
  primary: Primary,
  held: { soa: WireRR; serial: number } | null,
  key: Key | undefined,
  timeoutMs = 30_000,
): Promise<TransferResult> {
  const nowSec = (): number => Math.floor(Date.now() / 1000);
  let msg = request(zone, held?.soa ?? null);
  const id = msg.readUInt16BE(0);
  let verifier: ResponseVerifier | null = null;
  if (key) {
    const signed = signRequest(msg, key, nowSec());
    msg = signed.msg;
    verifier = new ResponseVerifier(key, signed.mac);
  }
  const ours = held ? held.serial : null;
  return new Promise((resolve, reject) => {
    const sock = connect({ host: primary.host, port: primary.port });
    const records: D2Resource[] = [];
    let buf: Buffer = Buffer.alloc(0);
    let settled = false;
    const done = (err: Error | null, r?: TransferResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(r!);
    };
    const timer = setTimeout(() => done(new Error(`no complete transfer within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (m: Buffer): void => {
      if (m.length < 12 || m.readUInt16BE(0) !== id || !(m[2]! & 0x80)) throw new Error('unexpected message');
      const rcode = m[3]! & 0x0f;
      if (rcode !== RCODE.NOERROR) throw new Error(`primary answered rcode ${rcode}`);
      verifier?.check(m, nowSec());
      const p = parsePacket(m);
      if (p.errors.length) throw new Error(`undecodable records in the transfer: ${String(p.errors[0])}`);
      records.push(...p.answers);
      if (records.length > MAX_RECORDS) throw new Error('transfer too large');
      if (verifier && !verifier.complete) return;
      const plan = planTransfer(records, ours);
      if (plan === 'bad') throw new Error('the transfer is not a valid AXFR/IXFR answer');
      if (plan) done(null, plan);
    };
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(msg.length);
      sock.write(Buffer.concat([len, msg]));
    });
    sock.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      try {
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const n = buf.readUInt16BE(0);
          onMessage(buf.subarray(2, 2 + n));
          buf = buf.subarray(2 + n);
          if (settled) return;
        }
      } catch (e) {
        done(e instanceof Error ? e : new Error(String(e)));
      }
    });
    sock.on('error', (e) => done(e));
    sock.on('close', () => done(new Error('the primary closed the connection before the transfer ended')));
  });
}
