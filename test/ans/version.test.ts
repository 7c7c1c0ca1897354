import { describe, expect, it } from 'vitest';
import { compareSemver, incompatibilities } from '../../ans/index.js';
import { card } from '../helpers/api.js';

describe('compareSemver', () => {
  it.each([
    ['1.0.0', '1.0.1', -1],
    ['1.2.0', '1.10.0', -1],
    ['2.0.0', '1.99.99', 1],
    ['1.0.0-alpha', '1.0.0', -1],
    ['1.0.0-alpha.1', '1.0.0-alpha.beta', -1],
    ['1.0.0-beta.2', '1.0.0-beta.11', -1],
    ['1.0.0+build.1', '1.0.0+build.2', 0],
  ])('%s vs %s', (a, b, sign) => {
    expect(Math.sign(compareSemver(a, b))).toBe(sign);
    expect(Math.sign(compareSemver(b, a))).toBe(-sign || 0);
  });
});

describe('incompatibilities', () => {
  const base = card('w', {
    skills: [
      { id: 'a', name: 'A', description: '' },
      { id: 'b', name: 'B', description: '' },
    ],
  });
  it('allows adding skills and endpoints', () => {
    const more = { ...base, skills: [...base.skills, { id: 'c', name: 'C', description: '' }] };
    expect(incompatibilities(base, more)).toEqual([]);
  });
  it('names a removed skill and a removed endpoint', () => {
    const less = {
      ...base,
      skills: [base.skills[0]!],
      endpoints: [{ protocol: 'mcp' as const, url: 'https://x:1/mcp' }],
    };
    expect(incompatibilities(base, less)).toEqual([
      "skill 'b' removed",
      'endpoint a2a https://127.0.0.1:8443/w removed',
    ]);
  });
});
