import type { AgentRecord } from '../../src/federation/types.js';

export function rec(over: Partial<AgentRecord> = {}): AgentRecord {
  return {
    id: 'a1',
    fqdn: 'weather.car.internal',
    domain: 'car.internal',
    name: 'Weather Agent',
    version: '1.0.0',
    description: 'Forecasts for the road',
    skills: [{ id: 'forecast', name: 'Forecast', description: 'rain and sun', tags: ['weather'] }],
    tags: ['weather'],
    protocols: ['a2a'],
    endpoints: [{ protocol: 'a2a', url: 'http://gw2.example/gw/weather.car.internal/' }],
    origin: 'http://gw2.example',
    seq: 1,
    ...over,
  };
}
