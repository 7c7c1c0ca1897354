/**
 * The ONE wrapper around dns2. dns2 encodes and decodes; this file fills its gaps:
 *  - a byte-oriented writer with dns2's Writer interface (dns2's own writer keeps one array slot
 *    per bit, which makes large zones slow to encode); the encoders are still dns2's;
 *  - TXT data split into <= 255-byte character-strings (dns2 emits a malformed packet otherwise);
 *  - types dns2 has no codec for (TLSA, TSIG) encoded as RFC 3597 raw RDATA through dns2;
 *  - the OPT record (RFC 6891): echoed with our payload size 1232, DO echoed, BADVERS split into the
 *    extended RCODE, and kept on truncated answers (dns2 drops it);
 *  - assembly of responses from pre-encoded records (answers are precomputed and cached as bytes;
 *    per query only the ID, flags and the question - with the client's case - are patched in);
 *  - multi-message zone transfers (dns2 fails on one message over 64 KB);
 *  - a scanner for the common query shape (one question, optional OPT) so the hot path does not
 *    run dns2's bit-level decoder; anything else is decoded by dns2's Packet.parse.
 */
import dns2 from 'dns2';

// ---------------------------------------------------------------------------------------------
// Typed facade over dns2 (its bundled types are incomplete)

export interface D2Header {
  id: number;
  qr: number;
  opcode: number;
  aa: number;
  tc: number;
  rd: number;
  ra: number;
  z: number;
  ad: number;
  cd: number;
  rcode: number;
  qdcount: number;
  ancount: number;
  nscount: number;
  arcount: number;
}
export interface D2Question {
  name: string;
  type: number;
  class: number;
}
export interface D2Resource {
  name: string;
  type: number;
  class: number;
  ttl: number;
  [field: string]: unknown;
}
export interface D2Packet {
  header: D2Header;
  questions: D2Question[];
  answers: D2Resource[];
  authorities: D2Resource[];
  additionals: D2Resource[];
  errors: unknown[];
}
interface D2Writer {
  names?: Map<string, number>;
  write(d: number, size: number): void;
  bitLength(): number;
  byteLength(): number;
  patch(bitOffset: number, value: number, size: number): void;
  toBuffer(): Buffer;
}
interface D2PacketStatic {
  parse(buf: Buffer): D2Packet;
  Resource: { encode(r: D2Resource, w: D2Writer): Buffer };
  Question: { encode(q: D2Question, w: D2Writer): void };
  Name: { encode(name: string, w: D2Writer): void; decode(reader: unknown): string };
  Header: new (h: Partial<D2Header>) => D2Header & { toBuffer(w: D2Writer): Buffer };
  Reader: new (buf: Buffer, offset?: number) => { offset: number; read(bits: number): number };
}
const Packet = (dns2 as unknown as { Packet: D2PacketStatic }).Packet;

// ---------------------------------------------------------------------------------------------
// Constants

export const TYPE = {
  A: 1,
  NS: 2,
  SOA: 6,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  TLSA: 52,
  TSIG: 250,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
} as const;
export const TYPE_NAME: Record<number, string> = Object.fromEntries(Object.entries(TYPE).map(([k, v]) => [v, k]));
export const CLASS_IN = 1;
export const CLASS_ANY = 255;
export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  NOTAUTH: 9,
  BADVERS: 16,
} as const;
export const OPCODE = { QUERY: 0, NOTIFY: 4 } as const;
/** Our EDNS UDP payload size (DNS flag day 2020). */
export const EDNS_PAYLOAD = 1232;

// ---------------------------------------------------------------------------------------------
// A byte writer with dns2's Writer interface

export class ByteWriter implements D2Writer {
  names?: Map<string, number>;
  private buf: Buffer;
  private bits = 0;

  constructor(size = 512) {
    this.buf = Buffer.alloc(size);
  }

  private ensure(extraBits: number): void {
    const need = Math.ceil((this.bits + extraBits) / 8);
    if (need <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(need, this.buf.length * 2));
    this.buf.copy(next);
    this.buf = next;
  }

  write(d: number, size: number): void {
    if (this.bits + size > this.buf.length * 8) this.ensure(size);
    if ((this.bits & 7) === 0 && (size & 7) === 0) {
      let pos = this.bits >>> 3;
      for (let shift = size - 8; shift >= 0; shift -= 8) {
        this.buf[pos++] = (d >>> shift) & 0xff;
      }
      this.bits += size;
      return;
    }
    for (let i = size - 1; i >= 0; i--) {
      const bit = (d >>> i) & 1;
      const byte = this.bits >>> 3;
      const mask = 0x80 >>> (this.bits & 7);
      this.buf[byte] = bit ? this.buf[byte]! | mask : this.buf[byte]! & ~mask;
      this.bits++;
    }
  }

  writeBytes(b: Uint8Array): void {
    if ((this.bits & 7) !== 0) throw new Error('unaligned writeBytes');
    this.ensure(b.length * 8);
    this.buf.set(b, this.bits >>> 3);
    this.bits += b.length * 8;
  }

  bitLength(): number {
    return this.bits;
  }

  byteLength(): number {
    return this.bits / 8;
  }

  patch(bitOffset: number, value: number, size: number): void {
    const saved = this.bits;
    this.bits = bitOffset;
    this.write(value, size);
    this.bits = saved;
  }

  /**
   * A view, not a copy: dns2's Resource.encode calls this after every record, so a copy made
   * encoding a zone transfer's records quadratic. Every caller that keeps the result owns a
   * fresh writer; the shared scratch writer is read with copyTo.
   */
  toBuffer(): Buffer {
    return this.buf.subarray(0, Math.ceil(this.bits / 8));
  }

  copyTo(a: { copy(src: Buffer, start: number, end: number): Buffer }): Buffer {
    return a.copy(this.buf, 0, Math.ceil(this.bits / 8));
  }

  reset(): void {
    this.bits = 0;
    this.names = undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Records

export type RR =
  | { name: string; ttl: number; type: 1; address: string }
  | { name: string; ttl: number; type: 28; address: string }
  | { name: string; ttl: number; type: 2; ns: string }
  | {
      name: string;
      ttl: number;
      type: 6;
      mname: string;
      rname: string;
      serial: number;
      refresh: number;
      retry: number;
      expire: number;
      minimum: number;
    }
  | { name: string; ttl: number; type: 16; text: string }
  | { name: string; ttl: number; type: 33; priority: number; weight: number; port: number; target: string }
  | { name: string; ttl: number; type: 52; usage: number; selector: number; mtype: number; data: string };

/** Splits text into <= 255-byte character-strings (RFC 1035 3.3.14), never inside a UTF-8 sequence. */
export function splitTxt(text: string): Buffer[] {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length === 0) return [Buffer.alloc(0)];
  const out: Buffer[] = [];
  let i = 0;
  while (i < bytes.length) {
    let end = Math.min(i + 255, bytes.length);
    if (end < bytes.length) while (end > i && (bytes[end]! & 0xc0) === 0x80) end--;
    out.push(bytes.subarray(i, end));
    i = end;
  }
  return out;
}

function toD2(rr: RR): D2Resource {
  const r: D2Resource = { name: rr.name, type: rr.type, class: CLASS_IN, ttl: rr.ttl };
  switch (rr.type) {
    case 1:
    case 28:
      r['address'] = rr.address;
      break;
    case 2:
      r['ns'] = rr.ns;
      break;
    case 6:
      r['primary'] = rr.mname;
      r['admin'] = rr.rname;
      r['serial'] = rr.serial;
      r['refresh'] = rr.refresh;
      r['retry'] = rr.retry;
      r['expiration'] = rr.expire;
      r['minimum'] = rr.minimum;
      break;
    case 16:
      // short ASCII text: one character-string; dns2 converts it itself
      r['data'] = rr.text.length <= 255 && /^[\x20-\x7e]*$/.test(rr.text) ? [rr.text] : splitTxt(rr.text);
      break;
    case 33:
      r['priority'] = rr.priority;
      r['weight'] = rr.weight;
      r['port'] = rr.port;
      r['target'] = rr.target;
      break;
    case 52: {
      // dns2 has no TLSA codec: RFC 3597 raw RDATA goes through its unknown-type path.
      const data = Buffer.alloc(3 + rr.data.length / 2);
      data[0] = rr.usage;
      data[1] = rr.selector;
      data[2] = rr.mtype;
      data.write(rr.data, 3, 'hex');
      r['data'] = data;
      break;
    }
  }
  return r;
}

/** Long-lived record bytes are carved from large slabs: no pool fragmentation, little overhead. */
class Arena {
  private slab = Buffer.allocUnsafeSlow(0);
  private used = 0;
  copy(src: Buffer, start: number, end: number): Buffer {
    const n = end - start;
    if (n > 16384) return Buffer.from(src.subarray(start, end));
    if (this.used + n > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(1 << 20);
      this.used = 0;
    }
    const out = this.slab.subarray(this.used, this.used + n);
    src.copy(out, 0, start, end);
    this.used += n;
    return out;
  }
}
const arena = new Arena();

/** Length of a name in wire format (uncompressed). */
export function nameWireLength(name: string): number {
  if (name === '') return 1;
  return Buffer.byteLength(name, 'latin1') + 2;
}

const scratch = new ByteWriter(65536);

/**
 * Encodes records back to back (uncompressed, dns2's encoder, our byte writer) into one buffer;
 * returns it with each record's [offset, length].
 */
export function encodeRRs(rrs: readonly RR[]): { buf: Buffer; spans: number[] } {
  return encodeResources(rrs.map(toD2));
}

/**
 * Records as dns2 decoded them (a zone transfer from a primary), re-encoded uncompressed the same
 * way; types dns2 has no codec for keep their raw RDATA (RFC 3597).
 */
export function encodeResources(rs: readonly D2Resource[]): { buf: Buffer; spans: number[] } {
  scratch.reset();
  const spans: number[] = [];
  for (const r of rs) {
    const start = scratch.byteLength();
    Packet.Resource.encode(r, scratch);
    spans.push(start, scratch.byteLength() - start);
  }
  return { buf: scratch.copyTo(arena), spans };
}

/** One record, uncompressed, in wire format. */
export function encodeRR(rr: RR): Buffer {
  return encodeRRs([rr]).buf;
}

/** Any record dns2 can describe (used for TSIG and OPT). */
function encodeD2(r: D2Resource): Buffer {
  const w = new ByteWriter(64);
  Packet.Resource.encode(r, w);
  return w.toBuffer();
}

export function encodeName(name: string): Buffer {
  const w = new ByteWriter(64);
  Packet.Name.encode(name, w);
  return w.toBuffer();
}

export function encodeQuestion(q: D2Question): Buffer {
  const w = new ByteWriter(64);
  Packet.Question.encode(q, w);
  return w.toBuffer();
}

/** Decodes an uncompressed name at `offset` of `buf` with dns2; returns the name and the next offset. */
export function decodeName(buf: Buffer, offset: number): { name: string; next: number } {
  const reader = new Packet.Reader(buf, offset * 8);
  const name = Packet.Name.decode(reader);
  return { name, next: reader.offset / 8 };
}

/** dns2's decoder; throws on a message too short for a header. */
export function parsePacket(buf: Buffer): D2Packet {
  return Packet.parse(buf);
}

/** Raw RDATA of a record dns2 kept undecoded (TSIG, TLSA, ...). */
export function rawData(r: D2Resource): Buffer | null {
  return Buffer.isBuffer(r['data']) ? (r['data'] as Buffer) : null;
}

/** A TSIG resource record (type 250, class ANY, TTL 0) around RDATA we assembled. */
export function encodeTsigRR(keyName: string, rdata: Buffer): Buffer {
  return encodeD2({ name: keyName, type: TYPE.TSIG, class: CLASS_ANY, ttl: 0, data: rdata });
}

// ---------------------------------------------------------------------------------------------
// OPT

export interface Edns {
  payload: number;
  version: number;
  do: boolean;
}

const optCache = new Map<number, Buffer>();
/** Our OPT record: payload 1232, DO echoed, extended RCODE for codes over 15. dns2 encodes it. */
export function optRecord(doBit: boolean, rcode: number): Buffer {
  const key = (doBit ? 1 : 0) | ((rcode >>> 4) << 1);
  let b = optCache.get(key);
  if (!b) {
    const ext = (rcode >>> 4) & 0xff;
    const ttl = ((ext << 24) >>> 0) | (doBit ? 0x8000 : 0);
    b = encodeD2({ name: '', type: TYPE.OPT, class: EDNS_PAYLOAD, ttl, rdata: [] });
    // dns2 clamps TTLs to 2^31-1 (RFC 2181); the OPT TTL is flags, not a TTL: write it as is.
    b.writeUInt32BE(ttl, 5);
    optCache.set(key, b);
  }
  return b;
}

// ---------------------------------------------------------------------------------------------
// Fast query scan

export interface ScannedQuery {
  id: number;
  flags: number; // the request's 16 flag bits
  /** wire bytes of the question (name + type + class), as sent (case preserved) */
  qStart: number;
  qEnd: number;
  /** lower-cased wire name as a latin1 string: the cache key */
  key: string;
  qtype: number;
  qclass: number;
  edns: Edns | null;
}

/**
 * Recognises the common query shape (QR=0, opcode QUERY, one uncompressed question, no answer or
 * authority records, at most an OPT in the additional section, nothing after it). Anything else
 * returns null and goes to dns2's full decoder.
 */
export function scanQuery(buf: Buffer): ScannedQuery | null {
  const len = buf.length;
  if (len < 17) return null;
  const flags = (buf[2]! << 8) | buf[3]!;
  if (flags & 0xf800) return null; // QR=1 or opcode != 0
  if (buf[4] !== 0 || buf[5] !== 1 || buf[6] !== 0 || buf[7] !== 0 || buf[8] !== 0 || buf[9] !== 0) return null;
  const arcount = (buf[10]! << 8) | buf[11]!;
  if (arcount > 1) return null;
  let off = 12;
  let total = 1;
  for (;;) {
    if (off >= len) return null;
    const l = buf[off]!;
    if (l === 0) break;
    if (l > 63) return null;
    total += l + 1;
    if (total > 255) return null;
    off += l + 1;
  }
  off++; // root label
  if (off + 4 > len) return null;
  const nameEnd = off;
  const qtype = (buf[off]! << 8) | buf[off + 1]!;
  const qclass = (buf[off + 2]! << 8) | buf[off + 3]!;
  off += 4;
  let edns: Edns | null = null;
  if (arcount === 1) {
    if (off + 11 > len || buf[off] !== 0 || buf[off + 1] !== 0 || buf[off + 2] !== TYPE.OPT) return null;
    const rdlen = (buf[off + 9]! << 8) | buf[off + 10]!;
    if (off + 11 + rdlen !== len) return null;
    edns = {
      payload: (buf[off + 3]! << 8) | buf[off + 4]!,
      version: buf[off + 6]!,
      do: (buf[off + 7]! & 0x80) !== 0,
    };
  } else if (off !== len) return null;
  return {
    id: (buf[0]! << 8) | buf[1]!,
    flags,
    qStart: 12,
    qEnd: nameEnd + 4,
    key: buf.toString('latin1', 12, nameEnd).toLowerCase(),
    qtype,
    qclass,
    edns,
  };
}

/** Lower-cased wire name (latin1 key) -> dotted name without trailing dot. */
export function keyToName(key: string): string {
  const labels: string[] = [];
  let i = 0;
  while (i < key.length) {
    const l = key.charCodeAt(i);
    if (l === 0) break;
    labels.push(key.slice(i + 1, i + 1 + l));
    i += l + 1;
  }
  return labels.join('.');
}

/** Dotted name -> lower-cased wire key (inverse of keyToName). */
export function nameToKey(name: string): string {
  if (name === '') return '\0';
  let s = '';
  for (const label of name.toLowerCase().split('.')) s += String.fromCharCode(label.length) + label;
  return s + '\0';
}

// ---------------------------------------------------------------------------------------------
// Response assembly from pre-encoded records

/** A record already in wire form: bytes [off, off+len) of `buf`; the owner name is `ownerLen` bytes. */
export interface WireRR {
  name: string;
  type: number;
  buf: Buffer;
  off: number;
  len: number;
  ownerLen: number;
}

/** A copy of the record's bytes. */
export function rrBytes(r: WireRR): Buffer {
  return Buffer.from(r.buf.subarray(r.off, r.off + r.len));
}

/** Precomputed sections of an answer, independent of ID, flags and the question's case. */
export interface Body {
  rcode: number;
  aa: boolean;
  ancount: number;
  nscount: number;
  arcount: number;
  bytes: Buffer;
}

/**
 * Encodes answer/authority/additional sections for a question whose name is `qname` (lower case).
 * Owner names equal to the question name become a pointer to offset 12 (so they carry the query's
 * case); the apex becomes a pointer to the zone suffix of the question name.
 */
export function encodeBody(
  qname: string,
  apex: string,
  rcode: number,
  aa: boolean,
  answer: WireRR[],
  authority: WireRR[],
  additional: WireRR[],
  negativeTtl?: number,
): Body {
  const qlen = nameWireLength(qname);
  const apexPtr = qname === apex || qname.endsWith('.' + apex) ? 12 + qlen - nameWireLength(apex) : -1;
  const parts: Buffer[] = [];
  const emit = (r: WireRR, ttl?: number): void => {
    let ptr = -1;
    if (r.name === qname) ptr = 12;
    else if (r.name === apex && apexPtr >= 0) ptr = apexPtr;
    let b: Buffer;
    const tail = r.len - r.ownerLen;
    if (ptr >= 0) {
      b = Buffer.allocUnsafe(2 + tail);
      b[0] = 0xc0 | (ptr >>> 8);
      b[1] = ptr & 0xff;
      r.buf.copy(b, 2, r.off + r.ownerLen, r.off + r.len);
    } else {
      b = rrBytes(r);
    }
    if (ttl !== undefined) b.writeUInt32BE(ttl, b.length - tail + 4);
    parts.push(b);
  };
  for (const r of answer) emit(r);
  for (const r of authority) emit(r, negativeTtl);
  for (const r of additional) emit(r);
  return {
    rcode,
    aa,
    ancount: answer.length,
    nscount: authority.length,
    arcount: additional.length,
    bytes: Buffer.concat(parts),
  };
}

/**
 * A full response: header (ID and RD/CD copied from the request), the request's question bytes
 * (case preserved), the body and our OPT when the request had EDNS. When it does not fit `limit`
 * the sections are dropped and TC set; the OPT is kept.
 */
export function assemble(
  req: Buffer,
  id: number,
  reqFlags: number,
  qStart: number,
  qEnd: number,
  body: Body,
  edns: Edns | null,
  limit: number,
): Buffer {
  const opt = edns ? optRecord(edns.do, body.rcode) : null;
  const qlen = qEnd - qStart;
  const optLen = opt ? opt.length : 0;
  let size = 12 + qlen + body.bytes.length + optLen;
  const tc = size > limit;
  if (tc) size = 12 + qlen + optLen;
  const out = Buffer.allocUnsafe(size);
  out[0] = id >>> 8;
  out[1] = id & 0xff;
  // QR=1, opcode copied, AA, TC, RD copied; RA=0, Z=0, AD=0, CD copied.
  out[2] = 0x80 | ((reqFlags >>> 8) & 0x79) | (body.aa ? 0x04 : 0) | (tc ? 0x02 : 0);
  out[3] = (reqFlags & 0x10) | (body.rcode & 0x0f);
  out.writeUInt16BE(qlen ? 1 : 0, 4);
  out.writeUInt16BE(tc ? 0 : body.ancount, 6);
  out.writeUInt16BE(tc ? 0 : body.nscount, 8);
  out.writeUInt16BE((tc ? 0 : body.arcount) + (opt ? 1 : 0), 10);
  req.copy(out, 12, qStart, qEnd);
  let off = 12 + qlen;
  if (!tc) {
    body.bytes.copy(out, off);
    off += body.bytes.length;
  }
  if (opt) opt.copy(out, off);
  return out;
}

/** Header-only style answer (errors): question echoed when we have one. */
export function errorBody(rcode: number): Body {
  return { rcode, aa: false, ancount: 0, nscount: 0, arcount: 0, bytes: Buffer.alloc(0) };
}

// ---------------------------------------------------------------------------------------------
// Multi-message transfers

/**
 * Splits records into messages of at most `maxBytes` (well under 64 KB), each with its own header;
 * the question goes in the first message only (RFC 5936 2.2.1). Returns complete messages.
 */
export function transferMessages(
  id: number,
  reqFlags: number,
  question: Buffer,
  records: Iterable<Buffer>,
  maxBytes = 16_000,
): Buffer[] {
  const out: Buffer[] = [];
  let parts: Buffer[] = [];
  let count = 0;
  let size = 0;
  let first = true;
  const flush = (): void => {
    const q = first ? question : Buffer.alloc(0);
    const h = Buffer.alloc(12);
    h.writeUInt16BE(id, 0);
    h[2] = 0x80 | 0x04 | ((reqFlags >>> 8) & 0x01);
    h[3] = reqFlags & 0x10;
    h.writeUInt16BE(first ? 1 : 0, 4);
    h.writeUInt16BE(count, 6);
    out.push(Buffer.concat([h, q, ...parts]));
    first = false;
    parts = [];
    count = 0;
    size = 0;
  };
  for (const r of records) {
    if (count > 0 && 12 + question.length + size + r.length > maxBytes) flush();
    parts.push(r);
    size += r.length;
    count++;
  }
  if (count > 0 || first) flush();
  return out;
}

/** Offsets of the start of every resource record (after the question section); null if malformed. */
export function recordOffsets(buf: Buffer): number[] | null {
  if (buf.length < 12) return null;
  const qd = buf.readUInt16BE(4);
  const rrs = buf.readUInt16BE(6) + buf.readUInt16BE(8) + buf.readUInt16BE(10);
  let off = 12;
  const skipName = (): boolean => {
    for (let guard = 0; guard < 128; guard++) {
      if (off >= buf.length) return false;
      const l = buf[off]!;
      if (l === 0) {
        off++;
        return true;
      }
      if ((l & 0xc0) === 0xc0) {
        off += 2;
        return off <= buf.length;
      }
      if (l & 0xc0) return false;
      off += l + 1;
    }
    return false;
  };
  for (let i = 0; i < qd; i++) {
    if (!skipName()) return null;
    off += 4;
  }
  const out: number[] = [];
  for (let i = 0; i < rrs; i++) {
    out.push(off);
    if (!skipName()) return null;
    if (off + 10 > buf.length) return null;
    off += 10 + buf.readUInt16BE(off + 8);
    if (off > buf.length) return null;
  }
  return out;
}
