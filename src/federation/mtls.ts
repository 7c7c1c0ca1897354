/**
 * Mutual TLS between gateways over https: each gateway presents its AMSP gateway certificate
 * (`amsp-gateway.<zone>` from its own CA) as the TLS client certificate on every connection to a
 * peer (AMSP sessions and relayed calls), and checks the one it is shown: the chain must end at a
 * trust anchor and the key must be the one the peer proved in its OPEN. Plain HTTP (loopback
 * only) carries no TLS identity; the signed OPEN, envelopes and AMSP-Hop still authenticate.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import type { Socket } from 'node:net';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { Agent } from 'undici';
import { FedErrors } from './errors.js';
import type { GatewayIdentity, TrustStore } from './identity.js';

/** What a request's connection says about its TLS client: not TLS, TLS without a certificate, or the chain. */
export type TlsClient = { tls: false } | { tls: true; chain: string[] | null };

export function tlsClientOf(sock: Socket): TlsClient {
  if (!(sock as Partial<TLSSocket>).encrypted) return { tls: false };
  const leaf = (sock as TLSSocket).getPeerCertificate(true) as Partial<DetailedPeerCertificate>;
  if (!leaf?.raw) return { tls: true, chain: null };
  // leaf, then each issuer the client sent, up to a self-signed certificate
  const chain: string[] = [];
  for (
    let c: Partial<DetailedPeerCertificate> | undefined = leaf;
    c?.raw && chain.length < 4;
    c = c.issuerCertificate
  ) {
    chain.push(c.raw.toString('base64'));
    if (c.issuerCertificate?.raw?.equals(c.raw)) break;
  }
  return { tls: true, chain };
}

/** Refuses a TLS client that is not the gateway holding `key` (no-op over plain HTTP). */
export function checkTlsClient(trust: TrustStore, client: TlsClient, key: KeyObject, peer: string): void {
  if (!client.tls) return;
  if (!client.chain) throw FedErrors.noClientCert(peer);
  const signer = trust.verifyChain(client.chain);
  if (!signer.publicKey.equals(key))
    throw FedErrors.untrusted(`the TLS client certificate is not the gateway certificate of ${peer}`);
}

const pem = (b64: string): string => new X509Certificate(Buffer.from(b64, 'base64')).toString();

/** TLS options for connections to peers: our gateway certificate and key, the trust anchors. */
export function peerTlsOptions(id: GatewayIdentity, trust: TrustStore): { ca: string; cert: string; key: string } {
  return {
    ca: trust.pem(),
    cert: id.x5c.map(pem).join(''),
    key: id.key.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** The dispatcher for AMSP control messages (OPEN, envelopes) to peers. */
export function peerAgent(tls: { ca: string; cert: string; key: string } | undefined): Agent {
  return new Agent({
    connections: 8,
    keepAliveTimeout: 4_000,
    connect: { timeout: 5_000, ...(tls ? { ...tls, rejectUnauthorized: true } : {}) },
  });
}
