/**
 * Assembling DER from pieces that asn1js/pkijs already encoded. The hot paths (leaf TBS, OCSP
 * responses, CRLs) encode each variable field once with asn1js and the constant parts once per
 * issuer, then join them under a tag with a correct DER length header instead of building and
 * re-encoding a whole pkijs object tree. Only the definite-length header is written here; every
 * value inside comes from asn1js.
 */
import type * as asn1js from 'asn1js';

/** DER encoding of an asn1js value (or anything with toSchema(), such as pkijs objects). */
export function enc(v: asn1js.AsnType | { toSchema(): asn1js.AsnType }): Uint8Array {
  const schema = 'toSchema' in v && typeof v.toSchema === 'function' ? v.toSchema() : (v as asn1js.AsnType);
  return new Uint8Array(schema.toBER(false));
}

/** The identifier + definite length octets for a value of `len` bytes (X.690 8.1.3, short/long form). */
export function header(tag: number, len: number): Uint8Array {
  if (len < 0x80) return Uint8Array.of(tag, len);
  let n = 0;
  for (let l = len; l > 0; l = Math.floor(l / 256)) n++;
  const h = new Uint8Array(2 + n);
  h[0] = tag;
  h[1] = 0x80 | n;
  for (let i = n, l = len; i > 0; i--, l = Math.floor(l / 256)) h[1 + i] = l & 0xff;
  return h;
}

/** tag || length || concatenation of `parts` (each already a complete DER element). */
export function tlv(tag: number, parts: readonly Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.byteLength;
  const h = header(tag, len);
  const out = new Uint8Array(h.byteLength + len);
  out.set(h, 0);
  let o = h.byteLength;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

export const TAG = {
  SEQUENCE: 0x30,
  OCTET_STRING: 0x04,
  /** [n] constructed, context-specific. */
  ctx: (n: number) => 0xa0 | n,
} as const;
