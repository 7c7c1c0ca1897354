import type { AgentCard } from '../../ans/index.js';

export interface Res<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
}

/** A thin real-HTTP client for tests. */
export function client(base: string) {
  const req = async <T = Record<string, unknown>>(
    method: string,
    path: string,
    init: { body?: unknown; raw?: string; bearer?: string; headers?: Record<string, string> } = {},
  ): Promise<Res<T>> => {
    const headers: Record<string, string> = { ...init.headers };
    if (init.body !== undefined || init.raw !== undefined) headers['content-type'] ??= 'application/json';
    if (init.bearer) headers['authorization'] = `Bearer ${init.bearer}`;
    const r = await fetch(base + path, {
      method,
      headers,
      ...(init.raw !== undefined
        ? { body: init.raw }
        : init.body !== undefined
          ? { body: JSON.stringify(init.body) }
          : {}),
    });
    const text = await r.text();
    let body: unknown = text;
    if ((r.headers.get('content-type') ?? '').includes('json')) body = JSON.parse(text);
    return { status: r.status, headers: r.headers, body: body as T };
  };
  return {
    get: <T = Record<string, unknown>>(p: string, bearer?: string) => req<T>('GET', p, bearer ? { bearer } : {}),
    post: <T = Record<string, unknown>>(p: string, body?: unknown, bearer?: string) =>
      req<T>('POST', p, { body: body ?? {}, ...(bearer ? { bearer } : {}) }),
    put: <T = Record<string, unknown>>(p: string, body: unknown, bearer?: string) =>
      req<T>('PUT', p, { body, ...(bearer ? { bearer } : {}) }),
    del: <T = Record<string, unknown>>(p: string, bearer?: string) => req<T>('DELETE', p, bearer ? { bearer } : {}),
    req,
  };
}

export function card(label: string, over: Partial<AgentCard> = {}): AgentCard {
  return {
    label,
    name: `${label} agent`,
    description: `The ${label} agent answers questions about ${label}.`,
    version: '1.0.0',
    skills: [{ id: 'main', name: 'Main', description: `Does ${label} things`, tags: [label] }],
    endpoints: [{ protocol: 'a2a', url: `https://127.0.0.1:8443/${label}` }],
    ...over,
  };
}
