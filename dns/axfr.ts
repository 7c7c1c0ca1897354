/**
 * AXFR (RFC 5936): the zone as SOA, every record, SOA, split over as many messages as it takes
 * (dns2 cannot encode one message over 64 KB).
 */
import type { Zone } from './zone.js';
import { transferMessages, type WireRR } from './wire.js';

export function* axfrRecords(zone: Zone): Generator<WireRR> {
  yield* zone.records();
  yield zone.soa;
}

export function* asBytes(records: Iterable<WireRR>): Generator<Buffer> {
  for (const r of records) yield r.buf.subarray(r.off, r.off + r.len);
}

/** Complete (unsigned) transfer messages for a request with this id/flags/question bytes. */
export function transferResponse(
  id: number,
  reqFlags: number,
  question: Buffer,
  records: Iterable<WireRR>,
  maxBytes?: number,
): Buffer[] {
  return transferMessages(id, reqFlags, question, asBytes(records), maxBytes);
}
