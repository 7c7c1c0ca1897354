/**
 * The interaction graph (who calls whom, how often, how often it fails, how long it takes),
 * kept in memory by this process since it started; `GET /v1/graph` renders it.
 */
export interface Edge {
  caller: string;
  target: string;
  calls: number;
  errors: number; // 5xx or no answer
  denied: number; // 401/403/429
  errorRate: number;
  meanMs: number;
  lastAt: string;
}

interface Acc {
  calls: number;
  errors: number;
  denied: number;
  totalMs: number;
  last: number;
}

export class CallGraph {
  private readonly edges = new Map<string, Map<string, Acc>>();
  private count = 0;

  note(caller: string, target: string, status: number, ms: number, at: number): void {
    let row = this.edges.get(caller);
    if (!row) {
      row = new Map();
      this.edges.set(caller, row);
    }
    let e = row.get(target);
    if (!e) {
      if (this.count >= 100_000) return;
      this.count++;
      e = { calls: 0, errors: 0, denied: 0, totalMs: 0, last: 0 };
      row.set(target, e);
    }
    e.calls++;
    if (status === 0 || status >= 500) e.errors++;
    else if (status === 401 || status === 403 || status === 429) e.denied++;
    e.totalMs += ms;
    e.last = at;
  }

  snapshot(): { nodes: string[]; edges: Edge[] } {
    const nodes = new Set<string>();
    const edges: Edge[] = [];
    for (const [caller, row] of this.edges)
      for (const [target, e] of row) {
        nodes.add(caller).add(target);
        edges.push({
          caller,
          target,
          calls: e.calls,
          errors: e.errors,
          denied: e.denied,
          errorRate: e.calls ? Math.round((e.errors / e.calls) * 1e4) / 1e4 : 0,
          meanMs: e.calls ? Math.round((e.totalMs / e.calls) * 100) / 100 : 0,
          lastAt: new Date(e.last).toISOString(),
        });
      }
    edges.sort((a, b) => b.calls - a.calls);
    return { nodes: [...nodes].sort(), edges };
  }
}
