import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Options every client subcommand takes. */
export interface ClientOptions {
  server?: string;
  token?: string;
  dataDir?: string;
}

export class CliError extends Error {
  override name = 'CliError';
}

export function serverUrl(o: ClientOptions): string {
  const env = process.env;
  const url =
    o.server ?? env['ANS_SERVER'] ?? env['ANS_PUBLIC_URL'] ?? `http://127.0.0.1:${env['ANS_HTTP_PORT'] ?? '8080'}`;
  return url.replace(/\/+$/, '');
}

/** The admin token: --token, ANS_TOKEN, or DIR/admin.token. */
export function adminToken(o: ClientOptions): string {
  if (o.token) return o.token;
  if (process.env['ANS_TOKEN']) return process.env['ANS_TOKEN'];
  const path = join(resolve(o.dataDir ?? process.env['ANS_DATA_DIR'] ?? './.ans'), 'admin.token');
  if (!existsSync(path)) throw new CliError(`no admin token: pass --token or run where ${path} exists`);
  return readFileSync(path, 'utf8').trim();
}

interface ProblemLike {
  detail?: string;
  code?: string;
  title?: string;
}

/** One HTTP request; a non-2xx answer becomes a CliError carrying the problem's detail and code. */
export async function send(
  o: ClientOptions,
  method: string,
  path: string,
  init: { body?: unknown; bearer?: string; accept?: string } = {},
): Promise<Response> {
  const headers: Record<string, string> = { accept: init.accept ?? 'application/json' };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (init.bearer) headers['authorization'] = `Bearer ${init.bearer}`;
  let res: Response;
  try {
    res = await fetch(serverUrl(o) + path, {
      method,
      headers,
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
  } catch (e) {
    throw new CliError(
      `cannot reach ${serverUrl(o)}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}`,
    );
  }
  if (!res.ok) {
    const text = await res.text();
    let p: ProblemLike = {};
    try {
      p = JSON.parse(text) as ProblemLike;
    } catch {
      /* not JSON */
    }
    throw new CliError(`${res.status} ${p.code ?? res.statusText}: ${p.detail ?? text.slice(0, 300)}`);
  }
  return res;
}

/** One HTTP call answered with JSON or text. */
export async function call<T = unknown>(
  o: ClientOptions,
  method: string,
  path: string,
  init: { body?: unknown; bearer?: string; accept?: string } = {},
): Promise<T> {
  const res = await send(o, method, path, init);
  const text = await res.text();
  if ((res.headers.get('content-type') ?? '').includes('json')) return JSON.parse(text) as T;
  return text as T;
}
