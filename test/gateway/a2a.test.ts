/**
 * A2A through the gateway with the official SDK at both ends: an `@a2a-js/sdk` server as the
 * agent, its client calling through `/gw/<fqdn>/` (card rewritten, A2A-Version passed, SSE
 * streamed) and through the domain's `POST /a2a` (routing by skill and by intent).
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Role, TaskState, type AgentCard, type Message } from '@a2a-js/sdk';
import { AgentEvent, DefaultRequestHandler, InMemoryTaskStore, type AgentExecutor } from '@a2a-js/sdk/server';
import { UserBuilder, agentCardHandler, jsonRpcHandler } from '@a2a-js/sdk/server/express';
import { ClientFactory, DefaultAgentCardResolver, JsonRpcTransportFactory, type Client } from '@a2a-js/sdk/client';
import { client } from '../helpers/api.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { enrol, type TestAgent } from './helpers.js';

let s: RunningServer;
let agentServer: Server;
let agentUrl: string;
let caller: TestAgent;
let weather: TestAgent;
let token: string;
const seenHeaders: Record<string, string | undefined>[] = [];
const seenMeta: unknown[] = [];

const text = (m: Message | undefined) =>
  (m?.parts ?? []).map((p) => (p.content?.$case === 'text' ? p.content.value : '')).join('');

class WeatherExecutor implements AgentExecutor {
  async execute(
    ctx: Parameters<AgentExecutor['execute']>[0],
    bus: Parameters<AgentExecutor['execute']>[1],
  ): Promise<void> {
    seenMeta.push(ctx.request.metadata);
    const q = text(ctx.userMessage);
    if (q.startsWith('stream')) {
      bus.publish(
        AgentEvent.task({
          id: ctx.taskId,
          contextId: ctx.contextId,
          status: { state: TaskState.TASK_STATE_SUBMITTED, message: undefined, timestamp: new Date().toISOString() },
          artifacts: [],
          history: [ctx.userMessage],
          metadata: undefined,
        }),
      );
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, 150));
        bus.publish(
          AgentEvent.statusUpdate({
            taskId: ctx.taskId,
            contextId: ctx.contextId,
            status: {
              state: TaskState.TASK_STATE_WORKING,
              message: reply(`tick ${i}`, ctx),
              timestamp: new Date().toISOString(),
            },
            metadata: { at: Date.now() },
          }),
        );
      }
      bus.publish(
        AgentEvent.statusUpdate({
          taskId: ctx.taskId,
          contextId: ctx.contextId,
          status: {
            state: TaskState.TASK_STATE_COMPLETED,
            message: reply('done', ctx),
            timestamp: new Date().toISOString(),
          },
          metadata: undefined,
        }),
      );
    } else {
      bus.publish(AgentEvent.message(reply(`sunny in ${q}`, ctx)));
    }
    bus.finished();
  }
  async cancelTask(): Promise<void> {}
}

function reply(t: string, ctx: { contextId: string; taskId: string }): Message {
  return {
    messageId: crypto.randomUUID(),
    contextId: ctx.contextId,
    taskId: '',
    role: Role.ROLE_AGENT,
    parts: [{ content: { $case: 'text', value: t }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
  } as Message;
}

const authed =
  (t: () => string): typeof fetch =>
  (input, init) => {
    const h = new Headers(init?.headers);
    h.set('authorization', `Bearer ${t()}`);
    return fetch(input, { ...init, headers: h });
  };

function a2aClient(base: string, path?: string): Promise<Client> {
  const f = authed(() => token);
  const factory = new ClientFactory({
    transports: [new JsonRpcTransportFactory({ fetchImpl: f })],
    cardResolver: new DefaultAgentCardResolver({ fetchImpl: f }),
  });
  return path === undefined ? factory.createFromUrl(base) : factory.createFromUrl(base, path);
}

const userMessage = (t: string): Message =>
  ({
    messageId: crypto.randomUUID(),
    contextId: '',
    taskId: '',
    role: Role.ROLE_USER,
    parts: [{ content: { $case: 'text', value: t }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
  }) as Message;

beforeAll(async () => {
  s = await startServer();
  const app = express();
  app.use((req, _res, next) => {
    seenHeaders.push({
      version: req.headers['a2a-version'] as string | undefined,
      caller: req.headers['ans-caller'] as string | undefined,
      auth: req.headers['authorization'],
    });
    next();
  });
  agentServer = await new Promise<Server>((r) => {
    const srv = app.listen(0, '127.0.0.1', () => r(srv));
  });
  agentUrl = `http://127.0.0.1:${(agentServer.address() as AddressInfo).port}`;
  const card: AgentCard = {
    name: 'Weather',
    description: 'Weather forecasts',
    supportedInterfaces: [{ url: `${agentUrl}/a2a`, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: '1.0' }],
    provider: undefined,
    version: '1.0.0',
    capabilities: { streaming: true, pushNotifications: false, extensions: [], extendedAgentCard: false },
    securitySchemes: {},
    securityRequirements: [],
    defaultInputModes: ['text/plain'],
    defaultOutputModes: ['text/plain'],
    skills: [
      {
        id: 'forecast',
        name: 'Forecast',
        description: 'Weather forecast for a city',
        tags: ['weather'],
        examples: [],
        inputModes: [],
        outputModes: [],
        securityRequirements: [],
      },
    ],
    signatures: [],
  } as unknown as AgentCard;
  const handler = new DefaultRequestHandler(card, new InMemoryTaskStore(), new WeatherExecutor());
  const cardMw = agentCardHandler({ agentCardProvider: handler });
  app.use('/.well-known/agent-card.json', cardMw);
  app.use('/a2a/.well-known/agent-card.json', cardMw);
  app.use('/a2a', jsonRpcHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication }));
  caller = await enrol(s.url, s.adminToken, 'caller', {
    endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/' }],
  });
  weather = await enrol(s.url, s.adminToken, 'weather', {
    description: 'Weather forecasts, rain and temperature for any city',
    skills: [
      {
        id: 'forecast',
        name: 'Forecast',
        description: 'Weather forecast: rain, sun and temperature for a city',
        tags: ['weather', 'rain', 'forecast'],
      },
    ],
    endpoints: [{ protocol: 'a2a', url: `${agentUrl}/a2a` }],
  });
  token = await caller.token();
});
afterAll(async () => {
  await s?.stop();
  agentServer?.closeAllConnections();
  await new Promise((r) => agentServer?.close(r));
});

describe('A2A SDK through /gw/<fqdn>/', () => {
  it('the agent card comes back with gateway URLs only', async () => {
    const r = await fetch(`${s.url}/gw/${weather.fqdn}/.well-known/agent-card.json`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(r.status).toBe(200);
    const body = await r.text();
    expect(body).not.toContain(agentUrl);
    const c = JSON.parse(body) as { supportedInterfaces: { url: string }[] };
    expect(c.supportedInterfaces[0]!.url).toBe(`${s.url}/gw/${weather.fqdn}/`);
  });

  it('message/send (SendMessage) round-trips; A2A-Version reaches the agent, the token does not', async () => {
    const c = await a2aClient(`${s.url}/gw/${weather.fqdn}/`);
    const before = seenHeaders.length;
    const res = await c.sendMessage({
      tenant: '',
      message: userMessage('Paris'),
      configuration: undefined,
      metadata: undefined,
    });
    const m = res as Message;
    expect(text(m)).toBe('sunny in Paris');
    const h = seenHeaders.slice(before).at(-1)!;
    expect(h.version).toBe('1.0');
    expect(h.caller).toBe(caller.fqdn);
    expect(h.auth).toBeUndefined();
  });

  it('streams SSE events as they happen, not buffered', async () => {
    const c = await a2aClient(`${s.url}/gw/${weather.fqdn}/`);
    const got: { kind: string; at: number }[] = [];
    for await (const ev of c.sendMessageStream({
      tenant: '',
      message: userMessage('stream please'),
      configuration: undefined,
      metadata: undefined,
    })) {
      got.push({ kind: ev.payload?.$case ?? '?', at: Date.now() });
    }
    expect(got.map((g) => g.kind)).toEqual(['task', 'statusUpdate', 'statusUpdate', 'statusUpdate', 'statusUpdate']);
    // the ticks arrived ~150 ms apart, so the gateway did not hold them back
    expect(got[3]!.at - got[1]!.at).toBeGreaterThan(200);
  });
});

describe('the domain card and POST /a2a', () => {
  it('the aggregated card lists every active agent skill with gateway URLs only', async () => {
    const r = await client(s.url).get<{
      url: string;
      skills: { id: string }[];
      supportedInterfaces: { url: string }[];
    }>('/.well-known/agent-card.json');
    expect(r.status).toBe(200);
    expect(r.body.url).toBe(`${s.url}/a2a`);
    expect(r.body.supportedInterfaces[0]!.url).toBe(`${s.url}/a2a`);
    expect(r.body.skills.map((x) => x.id)).toContain('weather.forecast');
    expect(JSON.stringify(r.body)).not.toContain(agentUrl);
  });

  it('the SDK client reads the domain card and is routed by skill id', async () => {
    const c = await a2aClient(s.url);
    const res = (await c.sendMessage({
      tenant: '',
      message: userMessage('Rome'),
      configuration: undefined,
      metadata: { skillId: 'weather.forecast' },
    })) as Message;
    expect(text(res)).toBe('sunny in Rome');
    expect(seenMeta.at(-1)).toMatchObject({ skillId: 'forecast' });
  });

  it('routes by intent through semantic search, and streams', async () => {
    const c = await a2aClient(s.url);
    const kinds: string[] = [];
    for await (const ev of c.sendMessageStream({
      tenant: '',
      message: userMessage('stream it'),
      configuration: undefined,
      metadata: { intent: 'will it rain tomorrow, weather forecast' },
    })) {
      kinds.push(ev.payload?.$case ?? '?');
    }
    expect(kinds[0]).toBe('task');
    expect(kinds.at(-1)).toBe('statusUpdate');
  });

  it('v0.3 method names are routed too; unknown skills and methods are refused clearly', async () => {
    const api = client(s.url);
    const rpc = (method: string, metadata: Record<string, unknown>) =>
      api.req<Record<string, unknown>>('POST', '/a2a', {
        bearer: token,
        body: {
          jsonrpc: '2.0',
          id: 7,
          method,
          params: {
            message: { kind: 'message', role: 'user', messageId: 'm', parts: [{ kind: 'text', text: 'Oslo' }] },
            metadata,
          },
        },
        headers: { 'a2a-version': '0.3' },
      });
    const unknown = await rpc('message/send', { skillId: 'nope' });
    expect(unknown.status).toBe(404);
    expect(unknown.body['code']).toBe('GW_ERR_NO_SKILL');
    const m = await rpc('tasks/get', { skillId: 'weather.forecast' });
    expect((m.body['error'] as { code: number }).code).toBe(-32601);
    const none = await api.req('POST', '/a2a', { body: { jsonrpc: '2.0', id: 1, method: 'SendMessage', params: {} } });
    expect(none.status).toBe(401);
    const v03 = await rpc('message/send', { skillId: 'forecast' });
    // the agent is v1.0-only: it answers v0.3 with a JSON-RPC error, but the gateway delivered it
    expect(v03.status).toBe(200);
    expect(v03.body['jsonrpc']).toBe('2.0');
  });
});
