/**
 * TSIG, HMAC-SHA256 (RFC 8945): verify a request's signature and sign responses, including every
 * message of a multi-message zone transfer (RFC 8945 5.3.1: prior MAC + message + timers).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { DNS_ERR_BAD_TSIG_KEY } from './errors.js';
import type { TsigKey } from './types.js';
import { decodeName, encodeName, encodeTsigRR, recordOffsets, TYPE } from './wire.js';
import { normalizeName } from './zone.js';

export const TSIG_ERR = { NOERROR: 0, BADSIG: 16, BADKEY: 17, BADTIME: 18, BADTRUNC: 22 } as const;
const ALG = 'hmac-sha256';
const FUDGE = 300;

export interface Key {
  name: string; // normalized
  secret: Buffer;
}

/** `name:hmac-sha256:base64secret` (the --tsig-key flag). */
export function parseTsigKey(spec: string): TsigKey {
  const parts = spec.split(':');
  if (parts.length !== 3) throw DNS_ERR_BAD_TSIG_KEY(spec);
  const [name, algorithm, secret] = parts as [string, string, string];
  if (!name || algorithm.toLowerCase() !== ALG || !/^[A-Za-z0-9+/]+={0,2}$/.test(secret))
    throw DNS_ERR_BAD_TSIG_KEY(spec);
  return { name, algorithm: ALG, secret };
}

export class Keyring {
  private readonly keys = new Map<string, Key>();
  constructor(keys: readonly TsigKey[] = []) {
    for (const k of keys) {
      if (k.algorithm !== ALG) throw DNS_ERR_BAD_TSIG_KEY(`${k.name}:${k.algorithm}:...`);
      const secret = Buffer.from(k.secret, 'base64');
      if (secret.length === 0) throw DNS_ERR_BAD_TSIG_KEY(`${k.name}:${k.algorithm}:...`);
      this.keys.set(normalizeName(k.name), { name: normalizeName(k.name), secret });
    }
  }
  get(name: string): Key | undefined {
    return this.keys.get(normalizeName(name));
  }
  first(): Key | undefined {
    return this.keys.values().next().value;
  }
  get size(): number {
    return this.keys.size;
  }
}

interface TsigRecord {
  keyName: string;
  algorithm: string;
  timeSigned: number;
  fudge: number;
  mac: Buffer;
  originalId: number;
  error: number;
  other: Buffer;
  /** offset of the TSIG RR in the message */
  offset: number;
}

/** The TSIG record of a message (must be the last record), or null when there is none. */
export function findTsig(msg: Buffer): TsigRecord | null | 'malformed' {
  const offs = recordOffsets(msg);
  if (!offs) return 'malformed';
  if (msg.readUInt16BE(10) === 0 || offs.length === 0) return null;
  const offset = offs[offs.length - 1]!;
  try {
    const { name: keyName, next } = decodeName(msg, offset);
    if (msg.readUInt16BE(next) !== TYPE.TSIG) {
      // a TSIG anywhere but last is a FORMERR (RFC 8945 5.1)
      for (const o of offs.slice(0, -1)) {
        const n = decodeName(msg, o).next;
        if (msg.readUInt16BE(n) === TYPE.TSIG) return 'malformed';
      }
      return null;
    }
    const rdlen = msg.readUInt16BE(next + 8);
    const rd = msg.subarray(next + 10, next + 10 + rdlen);
    const alg = decodeName(rd, 0);
    let p = alg.next;
    const timeSigned = rd.readUInt16BE(p) * 0x1_0000_0000 + rd.readUInt32BE(p + 2);
    const fudge = rd.readUInt16BE(p + 6);
    const macLen = rd.readUInt16BE(p + 8);
    p += 10;
    const mac = rd.subarray(p, p + macLen);
    p += macLen;
    const originalId = rd.readUInt16BE(p);
    const error = rd.readUInt16BE(p + 2);
    const otherLen = rd.readUInt16BE(p + 4);
    const other = rd.subarray(p + 6, p + 6 + otherLen);
    if (p + 6 + otherLen !== rd.length || mac.length !== macLen) return 'malformed';
    return {
      keyName: normalizeName(keyName),
      algorithm: normalizeName(alg.name),
      timeSigned,
      fudge,
      mac,
      originalId,
      error,
      other,
      offset,
    };
  } catch {
    return 'malformed';
  }
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
function time48(t: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(Math.floor(t / 0x1_0000_0000));
  b.writeUInt32BE(t % 0x1_0000_0000, 2);
  return b;
}

function variables(keyName: string, timeSigned: number, fudge: number, error: number, other: Buffer): Buffer {
  return Buffer.concat([
    encodeName(keyName.toLowerCase()),
    u16(255),
    Buffer.alloc(4),
    encodeName(ALG),
    time48(timeSigned),
    u16(fudge),
    u16(error),
    u16(other.length),
    other,
  ]);
}

export type VerifyResult =
  | { ok: true; key: Key; mac: Buffer; timeSigned: number }
  | { ok: false; error: number; keyName: string; originalId: number };

/** Verifies the TSIG of a request (`rec` from findTsig). */
export function verifyRequest(msg: Buffer, rec: TsigRecord, ring: Keyring, nowSec: number): VerifyResult {
  const fail = (error: number): VerifyResult => ({
    ok: false,
    error,
    keyName: rec.keyName,
    originalId: rec.originalId,
  });
  const key = ring.get(rec.keyName);
  if (!key || rec.algorithm !== ALG) return fail(TSIG_ERR.BADKEY);
  const stripped = Buffer.from(msg.subarray(0, rec.offset));
  stripped.writeUInt16BE(rec.originalId, 0);
  stripped.writeUInt16BE(stripped.readUInt16BE(10) - 1, 10);
  const expect = createHmac('sha256', key.secret)
    .update(stripped)
    .update(variables(rec.keyName, rec.timeSigned, rec.fudge, rec.error, rec.other))
    .digest();
  if (rec.mac.length < 16 || rec.mac.length > 32) return fail(TSIG_ERR.BADSIG);
  if (!timingSafeEqual(expect.subarray(0, rec.mac.length), rec.mac)) return fail(TSIG_ERR.BADSIG);
  if (Math.abs(nowSec - rec.timeSigned) > rec.fudge) return fail(TSIG_ERR.BADTIME);
  return { ok: true, key, mac: Buffer.from(rec.mac), timeSigned: rec.timeSigned };
}

function appendTsig(msg: Buffer, keyName: string, rdata: Buffer): Buffer {
  const out = Buffer.concat([msg, encodeTsigRR(keyName, rdata)]);
  out.writeUInt16BE(out.readUInt16BE(10) + 1, 10);
  return out;
}

function tsigRdata(timeSigned: number, mac: Buffer, originalId: number, error: number): Buffer {
  return Buffer.concat([
    encodeName(ALG),
    time48(timeSigned),
    u16(FUDGE),
    u16(mac.length),
    mac,
    u16(originalId),
    u16(error),
    u16(0),
  ]);
}

/**
 * Signs the messages of one response (one message, or all messages of a transfer).
 * @param requestMac the verified request MAC (empty for an unsolicited message such as NOTIFY)
 */
export function signMessages(msgs: readonly Buffer[], key: Key, requestMac: Buffer, nowSec: number): Buffer[] {
  let prior = requestMac;
  return msgs.map((m, i) => {
    const h = createHmac('sha256', key.secret);
    if (i === 0) {
      if (prior.length) h.update(u16(prior.length)).update(prior);
      h.update(m).update(variables(key.name, nowSec, FUDGE, 0, Buffer.alloc(0)));
    } else {
      h.update(u16(prior.length))
        .update(prior)
        .update(m)
        .update(Buffer.concat([time48(nowSec), u16(FUDGE)]));
    }
    const mac = h.digest();
    prior = mac;
    return appendTsig(m, key.name, tsigRdata(nowSec, mac, m.readUInt16BE(0), 0));
  });
}

/** An unsigned TSIG error record on a NOTAUTH response (BADKEY/BADSIG/BADTIME). */
export function appendTsigError(
  msg: Buffer,
  keyName: string,
  originalId: number,
  error: number,
  nowSec: number,
): Buffer {
  return appendTsig(msg, keyName, tsigRdata(nowSec, Buffer.alloc(0), originalId, error));
}

/**
 * Checks the TSIG of each message of one response in order, as a secondary receives a transfer
 * (RFC 8945 5.3.1): the first and last messages must be signed; unsigned messages in between
 * are covered by the next signed one. `check` throws on a missing or bad signature.
 */
export class ResponseVerifier {
  private prior: Buffer;
  private unsigned: Buffer[] = [];
  private signedCount = 0;

  constructor(
    private readonly key: Key,
    requestMac: Buffer,
  ) {
    this.prior = requestMac;
  }

  /** True once the latest message was signed (a transfer may only end on a signed message). */
  get complete(): boolean {
    return this.unsigned.length === 0 && this.signedCount > 0;
  }

  check(msg: Buffer, nowSec: number): void {
    const rec = findTsig(msg);
    if (rec === 'malformed') throw new Error('malformed TSIG record');
    if (!rec) {
      if (this.signedCount === 0) throw new Error('the first response message is not TSIG-signed');
      if (this.unsigned.length >= 99) throw new Error('more than 99 unsigned messages in a row');
      this.unsigned.push(msg);
      return;
    }
    if (rec.keyName !== this.key.name || rec.algorithm !== ALG) throw new Error(`signed with key ${rec.keyName}`);
    if (rec.error !== TSIG_ERR.NOERROR) throw new Error(`TSIG error ${rec.error} from the server`);
    const stripped = Buffer.from(msg.subarray(0, rec.offset));
    stripped.writeUInt16BE(rec.originalId, 0);
    stripped.writeUInt16BE(stripped.readUInt16BE(10) - 1, 10);
    const h = createHmac('sha256', this.key.secret);
    if (this.prior.length) h.update(u16(this.prior.length)).update(this.prior);
    for (const m of this.unsigned) h.update(m);
    h.update(stripped);
    if (this.signedCount === 0) h.update(variables(rec.keyName, rec.timeSigned, rec.fudge, rec.error, rec.other));
    else h.update(Buffer.concat([time48(rec.timeSigned), u16(rec.fudge)]));
    const expect = h.digest();
    if (rec.mac.length < 16 || !timingSafeEqual(expect.subarray(0, rec.mac.length), rec.mac))
      throw new Error('TSIG signature of the response does not verify');
    if (Math.abs(nowSec - rec.timeSigned) > rec.fudge) throw new Error('TSIG time of the response is off');
    this.prior = Buffer.from(rec.mac);
    this.unsigned = [];
    this.signedCount++;
  }
}

/** Signs a request (a query or NOTIFY we send); returns it with the MAC its response must chain to. */
export function signRequest(msg: Buffer, key: Key, nowSec: number): { msg: Buffer; mac: Buffer } {
  const signed = signMessages([msg], key, Buffer.alloc(0), nowSec)[0]!;
  const rec = findTsig(signed);
  if (!rec || rec === 'malformed') throw new Error('could not sign the request');
  return { msg: signed, mac: Buffer.from(rec.mac) };
}
