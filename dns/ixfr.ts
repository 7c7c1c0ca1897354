/**
 * IXFR (RFC 1995) from a bounded in-memory journal of zone diffs. When the journal no longer reaches
 * back to the client's serial the answer is the full zone (AXFR form), which RFC 1995 allows.
 */
import { serialGe } from './serial.js';
import type { WireRR } from './wire.js';

export interface JournalEntry {
  from: number;
  to: number;
  oldSoa: WireRR;
  newSoa: WireRR;
  removed: WireRR[];
  added: WireRR[];
}

export class Journal {
  private entries: JournalEntry[] = [];
  private rrCount = 0;

  constructor(
    private readonly maxEntries = 2000,
    private readonly maxRecords = 200_000,
  ) {}

  add(e: JournalEntry): void {
    this.entries.push(e);
    this.rrCount += e.removed.length + e.added.length + 2;
    while (this.entries.length > this.maxEntries || (this.rrCount > this.maxRecords && this.entries.length > 1)) {
      const old = this.entries.shift()!;
      this.rrCount -= old.removed.length + old.added.length + 2;
    }
  }

  clear(): void {
    this.entries = [];
    this.rrCount = 0;
  }

  get length(): number {
    return this.entries.length;
  }

  /** The chain of diffs from `serial` to the newest, or null when the journal does not reach it. */
  since(serial: number): JournalEntry[] | null {
    const i = this.entries.findIndex((e) => e.from === serial);
    if (i < 0) return null;
    const chain = this.entries.slice(i);
    for (let k = 1; k < chain.length; k++) if (chain[k]!.from !== chain[k - 1]!.to) return null;
    return chain;
  }
}

export type IxfrPlan =
  | { kind: 'current' } // client is up to date: one SOA
  | { kind: 'incremental'; chain: JournalEntry[] }
  | { kind: 'full' }; // fall back to AXFR form

export function planIxfr(journal: Journal, clientSerial: number, current: number): IxfrPlan {
  if (serialGe(clientSerial, current)) return { kind: 'current' };
  const chain = journal.since(clientSerial);
  return chain ? { kind: 'incremental', chain } : { kind: 'full' };
}

/** IXFR answer records: SOA(new), then per diff SOA(old) removed... SOA(new) added..., then SOA(new). */
export function* incrementalRecords(soa: WireRR, chain: readonly JournalEntry[]): Generator<WireRR> {
  yield soa;
  for (const e of chain) {
    yield e.oldSoa;
    yield* e.removed;
    yield e.newSoa;
    yield* e.added;
  }
  yield soa;
}
