/**
 * Route matching, pure: `/gw/<fqdn>/<rest>?<query>` -> a typed target or a typed refusal.
 * Works on the raw (still percent-encoded) request target, so what is checked is exactly what
 * is forwarded.
 */

export type GatewayTarget = {
  ok: true;
  /** Lower case, no trailing dot. */
  fqdn: string;
  /** The path after the name, without its leading slash, still percent-encoded ('' for none). */
  rest: string;
  /** '' or '?...' exactly as received. */
  search: string;
};

export type RouteRefusal = {
  ok: false;
  status: 400 | 404;
  code: 'GW_ERR_BAD_NAME' | 'GW_ERR_BAD_PATH' | 'GW_ERR_OUTSIDE_ZONE';
  detail: string;
};

export const GATEWAY_PREFIX = '/gw/';

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Lower case, without the trailing dot. */
export function normaliseZone(zone: string): string {
  return zone.toLowerCase().replace(/\.$/, '');
}

/** Whether `fqdn` (normalised) is a name inside `zone` (normalised), not the apex. */
export function inZone(fqdn: string, zone: string): boolean {
  return fqdn.length > zone.length + 1 && fqdn.endsWith(zone) && fqdn.charCodeAt(fqdn.length - zone.length - 1) === 46;
}

export function validName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  for (const l of name.split('.')) if (!LABEL.test(l)) return false;
  return true;
}

// Encoded forms that change the meaning of a path once an upstream decodes it: dot segments,
// slashes and backslashes hidden in a segment, NUL, CR, LF.
const BAD_ENCODED = /%(?:2f|5c|00|0d|0a)/i;
const CONTROL = /[\x00-\x1f\x7f]/;

/** Names as sent -> normalised, for names that passed `validName` (the same few names repeat). */
const VALID_NAMES = new Map<string, string>();

/**
 * Parses a raw request target. `zone` is normalised (see `normaliseZone`).
 */
export function parseGatewayUrl(rawUrl: string, zone: string): GatewayTarget | RouteRefusal {
  if (!rawUrl.startsWith(GATEWAY_PREFIX))
    return { ok: false, status: 404, code: 'GW_ERR_BAD_PATH', detail: 'not a gateway path' };
  const q = rawUrl.indexOf('?');
  const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const search = q < 0 ? '' : rawUrl.slice(q);
  if (CONTROL.test(rawUrl))
    return { ok: false, status: 400, code: 'GW_ERR_BAD_PATH', detail: 'control characters in the request target' };
  const slash = path.indexOf('/', GATEWAY_PREFIX.length);
  const rawName = slash < 0 ? path.slice(GATEWAY_PREFIX.length) : path.slice(GATEWAY_PREFIX.length, slash);
  const rest = slash < 0 ? '' : path.slice(slash + 1);
  let name = VALID_NAMES.get(rawName);
  if (name === undefined) {
    try {
      name = decodeURIComponent(rawName).toLowerCase();
    } catch {
      return { ok: false, status: 400, code: 'GW_ERR_BAD_NAME', detail: 'bad percent-encoding in the name' };
    }
    if (name.endsWith('.')) name = name.slice(0, -1);
    if (!validName(name))
      return { ok: false, status: 400, code: 'GW_ERR_BAD_NAME', detail: `'${name.slice(0, 80)}' is not a DNS name` };
    if (VALID_NAMES.size >= 10_000) VALID_NAMES.clear();
    VALID_NAMES.set(rawName, name);
  }
  if (!inZone(name, zone))
    return { ok: false, status: 404, code: 'GW_ERR_OUTSIDE_ZONE', detail: `${name} is not in the zone ${zone}` };
  const bad = checkRest(rest);
  if (bad) return { ok: false, status: 400, code: 'GW_ERR_BAD_PATH', detail: bad };
  return { ok: true, fqdn: name, rest, search };
}

/** Refuses dot segments (plain or encoded), encoded separators, backslashes and empty segments. */
export function checkRest(rest: string): string | undefined {
  if (rest.length === 0) return undefined;
  // Without '%', '.' or '\\' there is nothing to refuse (the usual path).
  if (!rest.includes('%') && !rest.includes('.') && !rest.includes('\\')) return undefined;
  if (BAD_ENCODED.test(rest)) return 'encoded slash, backslash, NUL, CR or LF';
  if (rest.includes('\\')) return 'backslash';
  for (const seg of rest.split('/')) {
    if (seg === '') continue; // a trailing slash; doubled slashes are harmless once joined
    let s: string;
    try {
      s = decodeURIComponent(seg);
    } catch {
      return 'bad percent-encoding';
    }
    if (s === '.' || s === '..') return 'dot segment (path traversal)';
  }
  return undefined;
}

/**
 * `<endpoint URL>` joined with `<rest>` by exactly one '/', query kept; returns the origin and
 * the path (with query) to send.
 */
export function upstreamPath(endpointPath: string, rest: string, search: string): string {
  if (rest === '') return (endpointPath === '' ? '/' : endpointPath) + search;
  const base = endpointPath.endsWith('/') ? endpointPath : `${endpointPath}/`;
  return base + (rest.startsWith('/') ? rest.replace(/^\/+/, '') : rest) + search;
}

/**
 * Rewrites an absolute URL that points into one of the agent's endpoints to the gateway:
 * `<endpoint URL>/x` -> `<public URL>/gw/<fqdn>/x`. Returns undefined when no endpoint matches.
 */
export function toGatewayUrl(url: string, endpoints: readonly string[], gatewayBase: string): string | undefined {
  let best: string | undefined;
  for (const e of endpoints) {
    const ep = e.replace(/\/+$/, '');
    if (
      (url === ep || url.startsWith(`${ep}/`) || url.startsWith(`${ep}?`)) &&
      (best === undefined || ep.length > best.length)
    )
      best = ep;
  }
  if (best === undefined) return undefined;
  const tail = url.slice(best.length).replace(/^\/+/, '');
  return gatewayBase + tail;
}
