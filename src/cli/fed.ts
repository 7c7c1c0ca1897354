import { Command } from 'commander';
import { call, type ClientOptions } from './client.js';
import { out, table } from './common.js';

interface RoutesView {
  gateway: string;
  role: string;
  zone: string;
  forwarding: { id: string; fqdn: string; domain: string; nextHop: string; origin: string; path: string[] }[];
  inapplicable: { id: string; fqdn: string; peer: string }[];
  local: { id: string; fqdn: string }[];
  peers: { uri: string; role: string; zone: string; state: string; messagesIn: number; messagesOut: number }[];
}

/** `ans fed routes`: the federation forwarding table of a gateway (GET /amsp/v1/routes). */
export function fedCommand(): Command {
  const fed = new Command('fed').description('federation (AMSP): forwarding table and peers');
  fed
    .command('routes')
    .description('print the forwarding table: agent -> next-hop gateway, with the PATH')
    .option('--peers', 'also list the peer sessions')
    .option('--local', 'also list this gateway’s own agents')
    .option('--json', 'print the whole view as JSON')
    .option('--server <URL>', 'ANS base URL [env ANS_SERVER] (default: http://127.0.0.1:8080)')
    .action(async (o: ClientOptions & { peers?: boolean; local?: boolean; json?: boolean }) => {
      const v = await call<RoutesView>(o, 'GET', '/amsp/v1/routes');
      if (o.json) return out(v);
      process.stdout.write(`gateway ${v.gateway}  zone ${v.zone}  role ${v.role}\n`);
      table(
        v.forwarding.map((f) => ({
          fqdn: f.fqdn,
          id: f.id,
          nextHop: f.nextHop,
          hops: f.path.length,
          path: f.path.join(' > '),
        })),
        ['fqdn', 'id', 'nextHop', 'hops', 'path'],
      );
      if (v.inapplicable.length) {
        process.stdout.write(`\ninapplicable (peer down, kept until it re-syncs):\n`);
        table(v.inapplicable, ['fqdn', 'id', 'peer']);
      }
      if (o.local) {
        process.stdout.write(`\nlocal agents:\n`);
        table(v.local, ['fqdn', 'id']);
      }
      if (o.peers) {
        process.stdout.write(`\npeers:\n`);
        table(v.peers, ['uri', 'zone', 'role', 'state', 'messagesIn', 'messagesOut']);
      }
    });
  return fed;
}
