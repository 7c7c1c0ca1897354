/**
 * Support for `ans admin policy ...` / `ans admin approvals ...` / `ans admin graph`: the calls
 * and the rows to print, independent of the CLI parser. `call` is the CLI's authenticated
 * HTTP helper bound to --server/--token.
 */
export type AdminCall = <T>(method: 'GET' | 'POST' | 'DELETE' | 'PUT', path: string, body?: unknown) => Promise<T>;

export interface PolicyCliOptions {
  call: AdminCall;
}

export interface PolicyRow {
  id: string;
  caller: string;
  target: string;
  effect: 'allow' | 'deny';
  createdAt: string;
}

export function policyCli({ call }: PolicyCliOptions) {
  return {
    /** `ans admin policy add CALLER TARGET allow|deny` */
    add: (caller: string, target: string, effect: string) => {
      if (effect !== 'allow' && effect !== 'deny') throw new Error(`effect must be allow or deny, got '${effect}'`);
      return call<PolicyRow>('POST', '/v1/policies', { caller, target, effect });
    },
    /** `ans admin policy list` (every page) */
    list: async (): Promise<PolicyRow[]> => {
      const out: PolicyRow[] = [];
      let cursor: string | null = null;
      do {
        const page: { items: PolicyRow[]; next: string | null } = await call(
          'GET',
          `/v1/policies?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        );
        out.push(...page.items);
        cursor = page.next;
      } while (cursor);
      return out;
    },
    /** `ans admin policy remove ID` */
    remove: (id: string) => call<PolicyRow & { deleted: true }>('DELETE', `/v1/policies/${encodeURIComponent(id)}`),
    /** `ans admin approvals` */
    approvals: async () => (await call<{ items: Record<string, unknown>[] }>('GET', '/v1/approvals')).items,
    /** `ans admin approvals approve|deny ID` */
    decide: (id: string, verdict: 'approve' | 'deny') =>
      call<{ id: string; verdict: string }>('POST', `/v1/approvals/${encodeURIComponent(id)}/${verdict}`),
    /** `ans admin graph` */
    graph: () => call<{ nodes: string[]; edges: Record<string, unknown>[] }>('GET', '/v1/graph'),
    columns: {
      policy: ['id', 'caller', 'target', 'effect', 'createdAt'] as const,
      approval: ['id', 'caller', 'target', 'skill', 'method', 'expiresAt'] as const,
      edge: ['caller', 'target', 'calls', 'errors', 'errorRate', 'meanMs'] as const,
    },
  };
}
