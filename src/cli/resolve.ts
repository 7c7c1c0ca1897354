import { Command } from 'commander';
import { compactVerify, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import type { ResolveAnswer, ResolveResult } from '../../ans/index.js';
import { call, CliError, type ClientOptions } from './client.js';
import { out } from './common.js';

/**
 * Checks a resolve answer against the server's JWKS and returns the signed payload: a client
 * trusts what was signed, not the unsigned copy beside it.
 */
export async function verifyAnswer(
  answer: ResolveAnswer,
  jwks: JSONWebKeySet,
  issuer: string,
): Promise<{ results: ResolveResult[]; reason?: string; query: string }> {
  const { payload } = await compactVerify(answer.jws, createLocalJWKSet(jwks), { algorithms: ['ES256'] });
  const signed = JSON.parse(new TextDecoder().decode(payload)) as {
    iss: string;
    query: string;
    results: ResolveResult[];
    reason?: string;
  };
  if (signed.iss !== issuer) throw new Error(`signed by ${signed.iss}, not ${issuer}`);
  return signed;
}

export function resolveCommand(): Command {
  return new Command('resolve')
    .description('find agents for a plain-language query; verifies the signed answer')
    .argument('<text>', 'what you need, in plain words')
    .option('-k, --top <N>', 'how many agents', '5')
    .option('--domain <ZONE>', 'only agents of this zone')
    .option('--protocol <P>', 'only agents speaking a2a | mcp | http')
    .option('--skill <TAG>', 'only agents with this skill tag')
    .option('--json', 'print the verified answer as JSON')
    .option('--server <URL>', 'ANS base URL [env ANS_SERVER] (default: http://127.0.0.1:8080)')
    .action(
      async (
        text: string,
        o: ClientOptions & { top: string; domain?: string; protocol?: string; skill?: string; json?: boolean },
      ) => {
        const q = new URLSearchParams({ q: text, k: String(Number(o.top) || 5) });
        if (o.domain) q.set('domain', o.domain);
        if (o.protocol) q.set('protocol', o.protocol);
        if (o.skill) q.set('skill', o.skill);
        const answer = await call<ResolveAnswer>(o, 'GET', `/v1/resolve?${q.toString()}`);
        const jwks = await call<JSONWebKeySet>(o, 'GET', '/.well-known/jwks.json');
        const issuer = (o.server ?? process.env['ANS_SERVER'] ?? '').replace(/\/+$/, '');
        let signed;
        try {
          signed = await verifyAnswer(
            answer,
            jwks,
            issuer ||
              (JSON.parse(Buffer.from(answer.jws.split('.')[1] ?? '', 'base64url').toString()) as { iss: string }).iss,
          );
        } catch (e) {
          throw new CliError(`the answer's signature does NOT verify: ${(e as Error).message}`);
        }
        if (o.json) return out(signed);
        if (signed.results.length === 0) {
          process.stdout.write(`no agent found: ${signed.reason ?? 'nothing matched'}\n`);
        }
        signed.results.forEach((r, i) => {
          const ep = r.endpoints.map((e) => `${e.protocol} ${e.url}`).join(', ');
          process.stdout.write(`${i + 1}. ${r.name} (${r.fqdn})  score ${r.score.toFixed(3)}\n   ${ep}\n`);
        });
        process.stdout.write('signature verified (JWS ES256 against /.well-known/jwks.json)\n');
      },
    );
}
