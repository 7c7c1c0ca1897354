import type { Command } from 'commander';

/** --server / --token / --data-dir on every client subcommand. */
export function clientOptions(c: Command): Command {
  return c
    .option('--server <URL>', 'ANS base URL [env ANS_SERVER] (default: http://127.0.0.1:8080)')
    .option('--token <TOKEN>', 'admin token [env ANS_TOKEN] (default: <data-dir>/admin.token)')
    .option('--data-dir <DIR>', 'data directory holding admin.token', './.ans');
}

export function out(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
}

/** A plain aligned table for terminals; scripts should use --json. */
export function table(rows: readonly object[], cols: readonly string[]): void {
  if (rows.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : String(v));
  const at = (r: object, c: string) => cell((r as Record<string, unknown>)[c]);
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => at(r, c).length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${line(cols.map((c) => c.toUpperCase()))}\n`);
  for (const r of rows) process.stdout.write(`${line(cols.map((c) => at(r, c)))}\n`);
}
