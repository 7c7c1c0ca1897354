/** Agent JWTs against a real in-memory CA whose clock the test moves: expiry and revocation refuse. */
import { describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../ca/index.js';
import { verifyAgentJwt } from '../../src/auth/index.js';
import { agentToken, createKeyAndCsr } from '../../src/client/index.js';
import { openStore } from '../../src/store/index.js';

describe('verifyAgentJwt with a real CA', () => {
  it('accepts a good certificate, refuses it once expired, and once revoked', async () => {
    const db = await openStore({});
    let clock = new Date('2026-11-23T12:00:00Z');
    const now = () => clock;
    const ca = await CertificateAuthority.open({
      db,
      zone: 'agents.internal.',
      publicUrl: 'http://127.0.0.1:1',
      passphrase: 'p',
      validityDays: 1,
      now,
    });
    try {
      const fqdn = 'clock.agents.internal';
      const { keyPem, csrPem } = await createKeyAndCsr(fqdn);
      const cert = await ca.issue({ subjectId: 'agent-1', fqdn, uri: `ans://v1.0.0.${fqdn}`, csrPem });
      const tok = () =>
        agentToken({
          agentId: 'agent-1',
          zone: 'agents.internal.',
          keyPem,
          certificatePem: cert.pem + cert.chainPem,
          now: clock,
        });
      const opts = { verifier: ca, zone: 'agents.internal.', now };

      await expect(verifyAgentJwt(await tok(), opts)).resolves.toMatchObject({ agentId: 'agent-1', fqdn });

      clock = new Date(clock.getTime() + 2 * 86_400_000);
      await expect(verifyAgentJwt(await tok(), opts)).rejects.toMatchObject({
        code: 'AUTH_ERR_BAD_AGENT_TOKEN',
        message: expect.stringMatching(/expired/),
      });

      clock = new Date('2026-11-23T12:00:00Z');
      await ca.revokeSubject('agent-1', 'keyCompromise');
      await expect(verifyAgentJwt(await tok(), opts)).rejects.toMatchObject({
        code: 'AUTH_ERR_BAD_AGENT_TOKEN',
        message: expect.stringMatching(/revoked/),
      });
    } finally {
      await db.close();
    }
  });
});
