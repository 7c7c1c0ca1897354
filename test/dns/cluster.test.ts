import { describe, expect, it } from 'vitest';
import { dig, startServer, synthAgent, weather } from './helpers.js';

async function until(f: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await f()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

describe('workers (cluster sharing the sockets)', () => {
  it('answers from two workers, follows upsert/remove, stops cleanly', async () => {
    const { server, port } = await startServer([weather, synthAgent(1)], { workers: 2 }, 40);
    try {
      for (let i = 0; i < 6; i++) {
        expect((await dig(port, 'SRV', '_a2a._tcp.weather.agents.internal', '+short')).trim()).toBe(
          '10 1 8443 weather-host.example.',
        );
      }
      expect(await dig(port, '+tcp', 'TXT', 'agent1.agents.internal', '+short')).toMatch(/id=agt_1/);
      server.upsert(synthAgent(2), 41);
      expect(await until(async () => (await dig(port, 'SOA', 'agents.internal', '+short')).includes(' 41 '))).toBe(
        true,
      );
      expect(await dig(port, 'TXT', 'agent2.agents.internal', '+short')).toMatch(/id=agt_2/);
      server.remove('agt_2', 42);
      expect(await until(async () => /NXDOMAIN/.test(await dig(port, 'TXT', 'agent2.agents.internal')))).toBe(true);
      expect(await dig(port, 'AXFR', 'agents.internal')).toMatch(/XFR size: 16 records/);
    } finally {
      await server.stop();
    }
  });
});
