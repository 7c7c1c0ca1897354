import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { agentToken, createKeyAndCsr, csrFor, type KeyKind } from '../client/index.js';
import { call, CliError, type ClientOptions } from './client.js';
import { out } from './common.js';

/** What `ans agent init` leaves in the agent directory, plus the id once registered. */
interface AgentState {
  label: string;
  zone: string;
  fqdn: string;
  id?: string;
}

type AgentOpts = ClientOptions & { dir: string };

function load(dir: string): AgentState {
  const p = join(dir, 'agent.json');
  if (!existsSync(p)) throw new CliError(`${p} not found: run 'ans agent init' first (or pass --dir)`);
  return JSON.parse(readFileSync(p, 'utf8')) as AgentState;
}

function save(dir: string, s: AgentState): void {
  writeFileSync(join(dir, 'agent.json'), `${JSON.stringify(s, null, 2)}\n`);
}

function needId(s: AgentState): string {
  if (!s.id) throw new CliError("this agent is not registered yet: run 'ans agent register'");
  return s.id;
}

/** The agent's certificate (+ issuing CA), fetched once approval has happened. */
async function certificate(o: AgentOpts, s: AgentState): Promise<string> {
  const p = join(o.dir, 'cert.pem');
  if (existsSync(p)) return readFileSync(p, 'utf8');
  const c = await call<{ certificate: string; chain: string; status: string }>(
    o,
    'GET',
    `/v1/agents/${needId(s)}/certificate`,
  );
  if (c.status !== 'good') throw new CliError(`the certificate is ${c.status}`);
  writeFileSync(p, c.certificate + c.chain);
  return c.certificate + c.chain;
}

async function token(o: AgentOpts): Promise<string> {
  const s = load(o.dir);
  return agentToken({
    agentId: needId(s),
    zone: s.zone,
    keyPem: readFileSync(join(o.dir, 'key.pem'), 'utf8'),
    certificatePem: await certificate(o, s),
  });
}

function agentOptions(c: Command): Command {
  return c
    .option('--dir <DIR>', 'agent directory (key.pem, csr.pem, card.json, agent.json)', '.')
    .option('--server <URL>', 'ANS base URL [env ANS_SERVER] (default: http://127.0.0.1:8080)');
}

export function agentCommand(): Command {
  const agent = new Command('agent').description('act as an agent: key + CSR, register, tokens, heartbeats, renewal');
  const sub = (name: string, desc: string) => agentOptions(agent.command(name).description(desc));

  sub('init', 'make a key, a CSR for <label>.<zone> and a card template')
    .requiredOption('--label <LABEL>', 'DNS label; the FQDN is <label>.<zone>')
    .option('--zone <ZONE>', 'the ANS zone', 'agents.internal.')
    .option('--key-type <KIND>', 'p256 | p384', 'p256')
    .option('--endpoint <PROTO=URL>', 'an endpoint, e.g. a2a=https://host:8443/a2a', 'a2a=https://127.0.0.1:8443/a2a')
    .action(async (o: AgentOpts & { label: string; zone: string; keyType: string; endpoint: string }) => {
      if (o.keyType !== 'p256' && o.keyType !== 'p384')
        throw new CliError('--key-type must be p256 or p384 (use openssl req for Ed25519 or RSA)');
      const zone = o.zone.toLowerCase().replace(/\.?$/, '.');
      const fqdn = `${o.label.toLowerCase()}.${zone.slice(0, -1)}`;
      const dir = resolve(o.dir);
      mkdirSync(dir, { recursive: true });
      if (existsSync(join(dir, 'key.pem'))) throw new CliError(`${dir}/key.pem exists; refusing to overwrite a key`);
      const { keyPem, csrPem } = await createKeyAndCsr(fqdn, o.keyType as KeyKind);
      writeFileSync(join(dir, 'key.pem'), keyPem, { mode: 0o600 });
      writeFileSync(join(dir, 'csr.pem'), csrPem);
      const [protocol, ...rest] = o.endpoint.split('=');
      const card = {
        label: o.label.toLowerCase(),
        name: o.label,
        description: 'What this agent does, in a sentence or two.',
        version: '1.0.0',
        skills: [{ id: 'main', name: 'Main skill', description: 'What the skill does.', tags: [] as string[] }],
        endpoints: [{ protocol, url: rest.join('=') }],
      };
      if (!existsSync(join(dir, 'card.json')))
        writeFileSync(join(dir, 'card.json'), `${JSON.stringify(card, null, 2)}\n`);
      save(dir, { label: card.label, zone, fqdn });
      process.stdout.write(
        `wrote ${dir}/key.pem (0600), csr.pem and card.json for ${fqdn}; edit card.json, then 'ans agent register'\n`,
      );
    });

  sub('register', 'send card.json and csr.pem; prints the id (pending until an admin approves)')
    .option('--card <FILE>', 'card JSON (default: <dir>/card.json)')
    .option('--csr <FILE>', 'CSR PEM (default: <dir>/csr.pem)')
    .action(async (o: AgentOpts & { card?: string; csr?: string }) => {
      const s = load(o.dir);
      const card: unknown = JSON.parse(readFileSync(o.card ?? join(o.dir, 'card.json'), 'utf8'));
      const csr = readFileSync(o.csr ?? join(o.dir, 'csr.pem'), 'utf8');
      const r = await call<{ id: string; status: string }>(o, 'POST', '/v1/agents', { body: { card, csr } });
      save(o.dir, { ...s, id: r.id });
      process.stdout.write(`${r.id} ${r.status}\n`);
    });

  sub('token', 'print a short-lived JWT for Authorization: Bearer').action(async (o: AgentOpts) => {
    process.stdout.write(`${await token(o)}\n`);
  });

  sub('heartbeat', 'report liveness').action(async (o: AgentOpts) => {
    const s = load(o.dir);
    out(await call(o, 'POST', `/v1/agents/${needId(s)}/heartbeat`, { bearer: await token(o) }));
  });

  sub('update', 'send a new card (a new version; incompatible changes need a new major)')
    .option('--card <FILE>', 'card JSON (default: <dir>/card.json)')
    .action(async (o: AgentOpts & { card?: string }) => {
      const s = load(o.dir);
      const card: unknown = JSON.parse(readFileSync(o.card ?? join(o.dir, 'card.json'), 'utf8'));
      const r = await call<{ version: string; certificate?: { certificate: string; chain: string } }>(
        o,
        'PUT',
        `/v1/agents/${needId(s)}`,
        {
          bearer: await token(o),
          body: { card },
        },
      );
      if (r.certificate) writeFileSync(join(o.dir, 'cert.pem'), r.certificate.certificate + r.certificate.chain);
      process.stdout.write(`updated to ${r.version}${r.certificate ? ' (new certificate)' : ''}\n`);
    });

  sub('renew', 'get a new certificate (same key, or --new-key)')
    .option('--new-key', 'make a new key first')
    .action(async (o: AgentOpts & { newKey?: boolean }) => {
      const s = load(o.dir);
      const bearer = await token(o);
      let keyPem = readFileSync(join(o.dir, 'key.pem'), 'utf8');
      let csrPem: string;
      if (o.newKey) ({ keyPem, csrPem } = await createKeyAndCsr(s.fqdn));
      else csrPem = await csrFor(keyPem, s.fqdn);
      const r = await call<{ certificate: string; chain: string; serial: string; notAfter: string }>(
        o,
        'POST',
        `/v1/agents/${needId(s)}/renew`,
        {
          bearer,
          body: { csr: csrPem },
        },
      );
      writeFileSync(join(o.dir, 'key.pem'), keyPem, { mode: 0o600 });
      writeFileSync(join(o.dir, 'csr.pem'), csrPem);
      writeFileSync(join(o.dir, 'cert.pem'), r.certificate + r.chain);
      process.stdout.write(`renewed: certificate ${r.serial}, valid until ${r.notAfter}\n`);
    });

  sub('revoke', 'revoke this agent (e.g. its key leaked)')
    .option('--reason <REASON>', 'RFC 5280 reason name', 'keyCompromise')
    .action(async (o: AgentOpts & { reason: string }) => {
      const s = load(o.dir);
      await call(o, 'POST', `/v1/agents/${needId(s)}/revoke`, { bearer: await token(o), body: { reason: o.reason } });
      process.stdout.write(`revoked ${s.fqdn}\n`);
    });

  sub('deregister', 'remove this agent from ANS').action(async (o: AgentOpts) => {
    const s = load(o.dir);
    await call(o, 'DELETE', `/v1/agents/${needId(s)}`, { bearer: await token(o) });
    process.stdout.write(`deregistered ${s.fqdn}\n`);
  });
  return agent;
}
