import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentCard } from '../ans/index.js';
import type { App } from './app.js';
import { createKeyAndCsr } from './client/index.js';

/**
 * Sample agents from the home-broadband use case of the ANS draft (fault diagnosis and
 * installation), so a first `ans resolve "poor mobile signal and unstable broadband at home"`
 * has something to find. Their keys go to DIR/demo/ so you can act as one of them.
 */
const DEMO: Omit<AgentCard, 'version' | 'endpoints'>[] = [
  {
    label: 'home-broadband',
    name: 'Home Broadband Agent',
    description:
      'Looks after a household fixed broadband line: diagnoses slow or dropping internet, checks the line, the router and the optical terminal, and opens repair tickets.',
    skills: [
      {
        id: 'diagnose-line',
        name: 'Diagnose broadband line',
        description: 'Find why home internet is slow, unstable or down.',
        tags: ['broadband', 'internet', 'fault'],
      },
      {
        id: 'router-check',
        name: 'Check home router',
        description: 'Inspect the home gateway, Wi-Fi settings and firmware.',
        tags: ['router', 'wifi'],
      },
    ],
  },
  {
    label: 'wireless-optimisation',
    name: 'Wireless Network Optimisation Agent',
    description:
      'Improves mobile coverage and Wi-Fi quality at a customer site: analyses signal strength, interference and cell load, and recommends or applies radio settings.',
    skills: [
      {
        id: 'signal-analysis',
        name: 'Signal analysis',
        description: 'Measure mobile and Wi-Fi signal quality and find weak spots.',
        tags: ['mobile', 'signal', 'coverage'],
      },
      {
        id: 'radio-tuning',
        name: 'Radio tuning',
        description: 'Change channels, power and band steering to reduce interference.',
        tags: ['wifi', 'optimisation'],
      },
    ],
  },
  {
    label: 'intent-recognition',
    name: 'Intent Recognition Agent',
    description:
      'Reads a customer request or complaint in plain language and turns it into a structured service intent.',
    skills: [
      {
        id: 'classify-intent',
        name: 'Classify intent',
        description: 'Identify the complaint or service request type.',
        tags: ['nlp', 'intent'],
      },
    ],
  },
  {
    label: 'root-cause',
    name: 'Single-Domain Root Cause Analysis Agent',
    description:
      'Correlates alarms, device data and topology in the access network to find the most likely root cause of a fault and its impact scope.',
    skills: [
      {
        id: 'rca',
        name: 'Root cause analysis',
        description: 'Find the root cause and impact of a network fault.',
        tags: ['fault', 'alarms', 'rca'],
      },
    ],
  },
  {
    label: 'fault-handling',
    name: 'Fault Handling Agent',
    description:
      'Repairs network faults automatically where possible: restarts ports, reconfigures devices and escalates when automatic repair fails.',
    skills: [
      {
        id: 'auto-repair',
        name: 'Automatic repair',
        description: 'Try automatic recovery of a diagnosed fault.',
        tags: ['repair', 'fault'],
      },
    ],
  },
  {
    label: 'field-scheduling',
    name: 'Installation and Maintenance Scheduling Agent',
    description:
      'Plans visits of installation and maintenance engineers by location, skills and urgency, and monitors service quality after the visit.',
    skills: [
      {
        id: 'dispatch',
        name: 'Dispatch engineer',
        description: 'Choose and book the best engineer for a job.',
        tags: ['dispatch', 'field', 'schedule'],
      },
    ],
  },
  {
    label: 'e2e-testing',
    name: 'End-to-End Testing Agent',
    description:
      'Runs end-to-end service tests (speed, latency, reachability) to confirm a service works after installation or repair.',
    skills: [
      {
        id: 'service-test',
        name: 'Service test',
        description: 'Run speed and reachability tests on a customer service.',
        tags: ['testing', 'validation'],
      },
    ],
  },
];

export async function loadDemo(app: App): Promise<number> {
  const dir = join(app.config.dataDir, 'demo');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const admin = { kind: 'admin' as const, name: 'demo' };
  let port = 9100;
  let loaded = 0;
  for (const d of DEMO) {
    port += 1;
    const card: AgentCard = {
      ...d,
      version: '1.0.0',
      endpoints: [{ protocol: 'a2a', url: `http://127.0.0.1:${port}/a2a` }],
    };
    const fqdn = app.registry.fqdnOf(card.label);
    const { keyPem, csrPem } = await createKeyAndCsr(fqdn);
    try {
      const { id } = await app.registry.register(card, csrPem, admin);
      const { certificate } = await app.registry.approve(id, admin);
      writeFileSync(join(dir, `${card.label}.key.pem`), keyPem, { mode: 0o600 });
      writeFileSync(join(dir, `${card.label}.cert.pem`), certificate.pem + certificate.chainPem);
      writeFileSync(join(dir, `${card.label}.id`), `${id}\n`);
      loaded += 1;
    } catch (e) {
      if ((e as { code?: string }).code !== 'ANS_ERR_LABEL_TAKEN') throw e;
    }
  }
  await app.settled();
  return loaded;
}
