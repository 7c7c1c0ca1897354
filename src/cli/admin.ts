import { Command } from 'commander';
import { policyCli } from '../gateway/index.js';
import { adminToken, call, type ClientOptions } from './client.js';
import { clientOptions, out, table } from './common.js';

interface AgentListItem {
  id: string;
  fqdn: string;
  status: string;
  liveness: string;
  version: string;
  createdAt: string;
}

export function adminCommand(): Command {
  const admin = new Command('admin').description('admin actions against a running ANS (needs the admin token)');
  const sub = (name: string, desc: string) => clientOptions(admin.command(name).description(desc));
  const list = async (o: ClientOptions & { status?: string; json?: boolean }) => {
    const q = o.status ? `?status=${encodeURIComponent(o.status)}&limit=1000` : '?limit=1000';
    const r = await call<{ agents: AgentListItem[] }>(o, 'GET', `/v1/agents${q}`, { bearer: adminToken(o) });
    if (o.json) return out(r);
    table(r.agents, ['id', 'fqdn', 'status', 'liveness', 'version', 'createdAt']);
  };

  sub('pending', 'list registrations waiting for approval')
    .option('--json', 'print JSON')
    .action((o: ClientOptions & { json?: boolean }) => list({ ...o, status: 'pending' }));
  sub('list', 'list agents')
    .option('--status <STATUS>', 'only this status')
    .option('--json', 'print JSON')
    .action(list);
  sub('approve', 'approve a registration: the CA issues its certificate')
    .argument('<id>')
    .action(async (id: string, o: ClientOptions) => {
      const r = await call<{ fqdn: string; serial: string; notAfter: string }>(o, 'POST', `/v1/agents/${id}/approve`, {
        bearer: adminToken(o),
      });
      process.stdout.write(`approved ${r.fqdn}: certificate ${r.serial}, valid until ${r.notAfter}\n`);
    });
  sub('reject', 'reject a registration')
    .argument('<id>')
    .option('--reason <TEXT>', 'why')
    .action(async (id: string, o: ClientOptions & { reason?: string }) => {
      await call(o, 'POST', `/v1/agents/${id}/reject`, {
        bearer: adminToken(o),
        body: o.reason ? { reason: o.reason } : {},
      });
      process.stdout.write(`rejected ${id}\n`);
    });
  sub('revoke', "revoke an agent's certificate and withdraw it")
    .argument('<id>')
    .option('--reason <REASON>', 'RFC 5280 reason name, e.g. keyCompromise', 'unspecified')
    .action(async (id: string, o: ClientOptions & { reason: string }) => {
      const r = await call<{ revokedSerials: string[] }>(o, 'POST', `/v1/agents/${id}/revoke`, {
        bearer: adminToken(o),
        body: { reason: o.reason },
      });
      process.stdout.write(`revoked ${id} (${o.reason}): ${r.revokedSerials.join(', ') || 'no certificate'}\n`);
    });
  sub('deregister', 'remove an agent')
    .argument('<id>')
    .action(async (id: string, o: ClientOptions) => {
      await call(o, 'DELETE', `/v1/agents/${id}`, { bearer: adminToken(o) });
      process.stdout.write(`deregistered ${id}\n`);
    });
  sub('audit', 'show the audit log, or check its hash chain with --verify')
    .option('--verify', 'verify the hash chain and name the first broken entry')
    .option('--after <SEQ>', 'entries after this sequence number', '0')
    .option('--limit <N>', 'how many', '100')
    .option('--json', 'print JSON')
    .action(async (o: ClientOptions & { verify?: boolean; after: string; limit: string; json?: boolean }) => {
      if (o.verify) {
        const v = await call<{ ok: boolean; checked: number; firstBroken?: number; why?: string }>(
          o,
          'GET',
          '/v1/audit/verify',
          { bearer: adminToken(o) },
        );
        if (v.ok) {
          process.stdout.write(`audit chain intact: ${v.checked} entries verified\n`);
          return;
        }
        process.stderr.write(
          `audit chain BROKEN at entry ${v.firstBroken}: ${v.why} (${v.checked} entries before it verified)\n`,
        );
        process.exitCode = 1;
        return;
      }
      const r = await call<{ entries: Record<string, unknown>[] }>(
        o,
        'GET',
        `/v1/audit?after=${Number(o.after)}&limit=${Number(o.limit)}`,
        {
          bearer: adminToken(o),
        },
      );
      if (o.json) return out(r);
      table(r.entries, ['seq', 'at', 'actor', 'action', 'subject']);
    });
  const token = admin.command('token').description('named admin tokens');
  clientOptions(token.command('create').description('create a named admin token (printed once)'))
    .argument('<name>')
    .action(async (name: string, o: ClientOptions) => {
      const r = await call<{ token: string }>(o, 'POST', '/v1/admin/tokens', { bearer: adminToken(o), body: { name } });
      process.stdout.write(`${r.token}\n`);
    });
  clientOptions(token.command('revoke').description('revoke a named admin token'))
    .argument('<name>')
    .action(async (name: string, o: ClientOptions) => {
      await call(o, 'DELETE', `/v1/admin/tokens/${encodeURIComponent(name)}`, { bearer: adminToken(o) });
      process.stdout.write(`revoked token ${name}\n`);
    });
  clientOptions(token.command('list').description('list admin tokens')).action(async (o: ClientOptions) => {
    const r = await call<{ tokens: Record<string, unknown>[] }>(o, 'GET', '/v1/admin/tokens', {
      bearer: adminToken(o),
    });
    table(r.tokens, ['name', 'createdAt', 'revokedAt']);
  });
  const gw = (o: ClientOptions) =>
    policyCli({
      call: (method, path, body) =>
        call(o, method, path, { bearer: adminToken(o), ...(body !== undefined ? { body } : {}) }),
    });
  const policy = admin
    .command('policy')
    .description('gateway policies: who may call whom (most specific wins, deny wins ties)');
  clientOptions(policy.command('add').description('add a rule; a PATTERN is an FQDN or *.<zone>'))
    .argument('<caller>')
    .argument('<target>')
    .argument('<effect>', 'allow | deny')
    .action(async (caller: string, target: string, effect: string, o: ClientOptions) => {
      const r = await gw(o).add(caller, target, effect);
      process.stdout.write(`${r.id} ${r.caller} -> ${r.target}: ${r.effect}\n`);
    });
  clientOptions(policy.command('list').description('list rules')).action(async (o: ClientOptions) => {
    const p = gw(o);
    table(await p.list(), p.columns.policy);
  });
  clientOptions(policy.command('remove').description('remove a rule'))
    .argument('<id>')
    .action(async (id: string, o: ClientOptions) => {
      await gw(o).remove(id);
      process.stdout.write(`removed ${id}\n`);
    });
  const approvals = clientOptions(admin.command('approvals').description('calls held for human approval'));
  approvals.action(async (o: ClientOptions) => {
    const p = gw(o);
    table(await p.approvals(), p.columns.approval);
  });
  for (const verdict of ['approve', 'deny'] as const) {
    clientOptions(approvals.command(verdict).description(`${verdict} a held call`))
      .argument('<id>')
      // --server/--token after the id are parsed by `approvals`, which takes the same options.
      .action(async (id: string, _o: ClientOptions, cmd: Command) => {
        await gw(cmd.optsWithGlobals<ClientOptions>()).decide(id, verdict);
        process.stdout.write(`${verdict === 'approve' ? 'approved' : 'denied'} ${id}\n`);
      });
  }
  clientOptions(admin.command('graph').description('who calls whom through the gateway'))
    .option('--json', 'print JSON')
    .action(async (o: ClientOptions & { json?: boolean }) => {
      const p = gw(o);
      const g = await p.graph();
      if (o.json) return out(g);
      table(g.edges, p.columns.edge);
    });
  return admin;
}
