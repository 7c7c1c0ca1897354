/**
 * MCP Streamable HTTP through the gateway with `@modelcontextprotocol/sdk` at both ends:
 * Mcp-Session-Id both ways, POST/GET/DELETE, a long-lived GET stream carrying server
 * notifications, Accept kept.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { enrol, eventually, type TestAgent } from './helpers.js';

let s: RunningServer;
let mcpHttp: Server;
let caller: TestAgent;
let tools: TestAgent;
let token: string;
const transports = new Map<string, StreamableHTTPServerTransport>();
const servers = new Map<string, McpServer>();
const seen: { method: string; session: string | undefined; accept: string | undefined }[] = [];

function newServer(): McpServer {
  const m = new McpServer({ name: 'calc', version: '1.0.0' }, { capabilities: { logging: {} } });
  m.registerTool(
    'add',
    { description: 'adds two numbers', inputSchema: { a: z.number(), b: z.number() } },
    async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] }),
  );
  return m;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const t = Buffer.concat(chunks).toString();
  return t ? JSON.parse(t) : undefined;
}

beforeAll(async () => {
  s = await startServer();
  mcpHttp = createServer(async (req, res) => {
    const sid = req.headers['mcp-session-id'] as string | undefined;
    seen.push({ method: req.method ?? '', session: sid, accept: req.headers['accept'] });
    if (!req.url?.startsWith('/mcp')) {
      res.writeHead(404).end();
      return;
    }
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    let t = sid ? transports.get(sid) : undefined;
    if (!t && sid) {
      res.writeHead(404).end();
      return;
    }
    if (!t) {
      const m = newServer();
      const fresh: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          transports.set(id, fresh);
          servers.set(id, m);
        },
      });
      fresh.onclose = () => {
        if (fresh.sessionId) {
          transports.delete(fresh.sessionId);
          servers.delete(fresh.sessionId);
        }
      };
      await m.connect(fresh);
      t = fresh;
    }
    await t.handleRequest(req, res, body);
  });
  await new Promise<void>((r) => mcpHttp.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(mcpHttp.address() as AddressInfo).port}/mcp`;
  caller = await enrol(s.url, s.adminToken, 'caller', {
    endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/' }],
  });
  tools = await enrol(s.url, s.adminToken, 'calc', {
    endpoints: [
      { protocol: 'a2a', url: 'http://127.0.0.1:9/a2a' },
      { protocol: 'mcp', url },
    ],
  });
  token = await caller.token();
});
afterAll(async () => {
  await s?.stop();
  mcpHttp?.closeAllConnections();
  await new Promise((r) => mcpHttp?.close(r));
});

describe('MCP Streamable HTTP through /gw/<fqdn>/', () => {
  it('initialises, lists and calls tools, receives notifications on the GET stream, and ends the session', async () => {
    const transport = new StreamableHTTPClientTransport(new URL(`${s.url}/gw/${tools.fqdn}/`), {
      requestInit: { headers: { authorization: `Bearer ${token}`, 'ans-protocol': 'mcp' } },
    });
    const c = new Client({ name: 'tester', version: '1.0.0' });
    const logs: string[] = [];
    c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      logs.push(String(n.params.data));
    });
    await c.connect(transport);
    const sid = transport.sessionId;
    expect(sid).toMatch(/^[0-9a-f-]{36}$/);
    const list = await c.listTools();
    expect(list.tools.map((t) => t.name)).toEqual(['add']);
    const r = await c.callTool({ name: 'add', arguments: { a: 2, b: 40 } });
    expect((r.content as { text: string }[])[0]!.text).toBe('42');

    // the session id went upstream on every call after initialize, and Accept was kept
    const posts = seen.filter((x) => x.method === 'POST');
    expect(posts.slice(1).every((x) => x.session === sid)).toBe(true);
    expect(posts[0]!.accept).toContain('text/event-stream');
    // the client opened the long-lived GET stream; a server notification comes down it
    await eventually(() => seen.some((x) => x.method === 'GET' && x.session === sid), 3000);
    await new Promise((res) => setTimeout(res, 100));
    await servers.get(sid!)!.server.sendLoggingMessage({ level: 'info', data: 'hello over GET' });
    await eventually(() => logs.includes('hello over GET'), 3000);

    await transport.terminateSession();
    expect(seen.some((x) => x.method === 'DELETE' && x.session === sid)).toBe(true);
    expect(transports.has(sid!)).toBe(false);
    await c.close();
  });

  it('a stale session id gets the agent own 404 back through the gateway', async () => {
    const r = await fetch(`${s.url}/gw/${tools.fqdn}/`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'ans-protocol': 'mcp',
        'mcp-session-id': 'nope',
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(r.status).toBe(404);
  });

  it('an unknown ANS-Protocol is a 400, a missing one picks the first endpoint', async () => {
    const bad = await fetch(`${s.url}/gw/${tools.fqdn}/`, {
      headers: { authorization: `Bearer ${token}`, 'ans-protocol': 'ftp' },
    });
    expect(bad.status).toBe(400);
    const first = await fetch(`${s.url}/gw/${tools.fqdn}/`, { headers: { authorization: `Bearer ${token}` } });
    expect(first.status).toBe(503); // the a2a endpoint (port 9) is down
  });
});
