/**
 * A parameterised statement as a value, so writes owned by different modules (an agent row, its
 * audit entry, its change-feed row) can go to the database as one statement: one round trip, and
 * atomic even outside a transaction.
 */
export interface Statement {
  text: string;
  params: readonly unknown[];
}

/** Renumbers `$n` placeholders by `offset` (our own SQL: no `$` inside literals). */
function shift(text: string, offset: number): string {
  return offset === 0 ? text : text.replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) + offset}`);
}

/**
 * Runs `writes` as data-modifying CTEs of `main`. PostgreSQL executes every data-modifying CTE
 * exactly once whether or not `main` reads it, all in `main`'s snapshot (so they cannot see each
 * other's rows; foreign keys are checked at the end of the statement and do). `main` may start
 * with its own `WITH` list.
 */
export function combine(writes: readonly Statement[], main: Statement): Statement {
  if (writes.length === 0) return main;
  const params: unknown[] = [];
  const ctes = writes.map((w, i) => {
    const text = `w${i} AS (${shift(w.text, params.length)})`;
    params.push(...w.params);
    return text;
  });
  let body = shift(main.text.trim(), params.length);
  params.push(...main.params);
  const own = /^WITH\s+/i.exec(body);
  body = own ? `WITH ${ctes.join(', ')}, ${body.slice(own[0].length)}` : `WITH ${ctes.join(', ')} ${body}`;
  return { text: body, params };
}
