/**
 * SOA serial arithmetic (RFC 1982, SERIAL_BITS = 32). The registry hands us its change sequence;
 * the zone serial is that sequence modulo 2^32, compared in sequence space so it survives wrap-around.
 */
const MOD = 0x1_0000_0000;
const HALF = 0x8000_0000;

/** The registry sequence (any non-negative integer) as a 32-bit serial. */
export function toSerial(seq: number): number {
  if (!Number.isFinite(seq) || seq < 0) return 0;
  return Math.floor(seq) % MOD;
}

/** RFC 1982 s1 < s2 (undefined when the distance is exactly 2^31: reported as false). */
export function serialLt(s1: number, s2: number): boolean {
  return (s1 < s2 && s2 - s1 < HALF) || (s1 > s2 && s1 - s2 > HALF);
}

export function serialGt(s1: number, s2: number): boolean {
  return serialLt(s2, s1);
}

export function serialGe(s1: number, s2: number): boolean {
  return s1 === s2 || serialGt(s1, s2);
}

/** RFC 1982 addition (n must be < 2^31). */
export function serialAdd(s: number, n: number): number {
  return (s + n) % MOD;
}

/**
 * The serial to publish after a change tagged with registry sequence `seq`: the sequence itself when
 * it moves forward in serial space, else one past the current serial (so secondaries always see an
 * increase; the composition root should never give a stale sequence, but a bad one must not freeze
 * the zone for its secondaries).
 */
export function nextSerial(current: number, seq: number): number {
  const s = toSerial(seq);
  return serialGt(s, current) ? s : serialAdd(current, 1);
}
