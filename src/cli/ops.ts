import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { pemToX5c, x5cToPem } from '../client/index.js';
import { adminToken, call, type ClientOptions } from './client.js';
import { clientOptions } from './common.js';

export function dnsCommand(): Command {
  const dns = new Command('dns').description('the DNS zone');
  clientOptions(
    dns.command('zone').description('print the zone in master-file format (asks the running server)'),
  ).action(async (o: ClientOptions) => {
    process.stdout.write(await call<string>(o, 'GET', '/v1/dns/zone', { bearer: adminToken(o), accept: 'text/dns' }));
  });
  return dns;
}

export function caCommand(): Command {
  const ca = new Command('ca').description('the certificate authority');
  clientOptions(ca.command('export').description('write root.pem and chain.pem (issuing CA first, root last)'))
    .option('--out <DIR>', 'where to write', '.')
    .action(async (o: ClientOptions & { out: string }) => {
      const chain = await call<string>(o, 'GET', '/v1/ca/certificate', { accept: 'application/pem-certificate-chain' });
      const certs = pemToX5c(chain);
      const dir = resolve(o.out);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'chain.pem'), chain);
      writeFileSync(join(dir, 'root.pem'), x5cToPem([certs.at(-1)!]));
      process.stdout.write(`wrote ${dir}/chain.pem (${certs.length} certificates) and ${dir}/root.pem\n`);
    });
  clientOptions(
    ca.command('rotate').description('replace the issuing intermediate (existing certificates stay valid)'),
  ).action(async (o: ClientOptions) => {
    const r = await call<{ issuers: string[] }>(o, 'POST', '/v1/ca/rotate', { bearer: adminToken(o), body: {} });
    process.stdout.write(`rotated the issuing CA; issuers now: ${r.issuers.join(', ')}\n`);
  });
  return ca;
}
