import { describe, expect, it } from 'vitest';
import { PolicySet, normalisePattern, type PolicyRule } from '../../src/gateway/index.js';

const Z = 'agents.internal';
let n = 0;
const rule = (caller: string, target: string, effect: 'allow' | 'deny'): PolicyRule => ({
  id: `p${++n}`,
  caller,
  target,
  effect,
});

describe('policy decisions (table)', () => {
  const cases: { name: string; rules: PolicyRule[]; caller: string; target: string; want: 'allow' | 'deny' }[] = [
    {
      name: 'default: same zone allowed',
      rules: [],
      caller: 'a.agents.internal',
      target: 'b.agents.internal',
      want: 'allow',
    },
    {
      name: 'default: other zone denied',
      rules: [],
      caller: 'a.home.internal',
      target: 'b.agents.internal',
      want: 'deny',
    },
    {
      name: 'default: to another zone denied',
      rules: [],
      caller: 'a.agents.internal',
      target: 'b.home.internal',
      want: 'deny',
    },
    {
      name: 'wildcard allow for a foreign zone',
      rules: [rule('*.home.internal', '*.agents.internal', 'allow')],
      caller: 'a.home.internal',
      target: 'b.agents.internal',
      want: 'allow',
    },
    {
      name: 'exact deny beats wildcard allow',
      rules: [
        rule('*.agents.internal', '*.agents.internal', 'allow'),
        rule('a.agents.internal', 'b.agents.internal', 'deny'),
      ],
      caller: 'a.agents.internal',
      target: 'b.agents.internal',
      want: 'deny',
    },
    {
      name: 'exact allow beats wildcard deny',
      rules: [
        rule('*.agents.internal', '*.agents.internal', 'deny'),
        rule('a.agents.internal', 'b.agents.internal', 'allow'),
      ],
      caller: 'a.agents.internal',
      target: 'b.agents.internal',
      want: 'allow',
    },
    {
      name: 'deeper wildcard beats shallower',
      rules: [rule('*.internal', '*', 'deny'), rule('*.home.internal', '*', 'allow')],
      caller: 'x.home.internal',
      target: 'y.agents.internal',
      want: 'allow',
    },
    {
      name: 'tie: deny wins',
      rules: [rule('a.agents.internal', '*', 'allow'), rule('*', 'b.agents.internal', 'deny')],
      caller: 'a.agents.internal',
      target: 'b.agents.internal',
      want: 'deny',
    },
    {
      name: 'same rule both ways: deny wins',
      rules: [rule('*', '*', 'allow'), rule('*', '*', 'deny')],
      caller: 'a.agents.internal',
      target: 'b.agents.internal',
      want: 'deny',
    },
    {
      name: 'global deny shuts the zone',
      rules: [rule('*', '*', 'deny')],
      caller: 'a.agents.internal',
      target: 'b.agents.internal',
      want: 'deny',
    },
    {
      name: 'non-matching rules fall to the default',
      rules: [rule('*.home.internal', '*.home.internal', 'deny')],
      caller: 'a.agents.internal',
      target: 'b.agents.internal',
      want: 'allow',
    },
    {
      name: '*.zone does not match the apex or a lookalike',
      rules: [rule('*.agents.internal', '*', 'deny')],
      caller: 'xagents.internal',
      target: 'b.agents.internal',
      want: 'deny',
    },
    {
      name: 'exact target beats wildcard caller+target',
      rules: [rule('*.agents.internal', '*.agents.internal', 'deny'), rule('*', 'b.agents.internal', 'allow')],
      caller: 'a.agents.internal',
      target: 'b.agents.internal',
      want: 'allow',
    },
  ];
  it.each(cases)('$name', ({ rules, caller, target, want }) => {
    expect(new PolicySet(rules, Z).decide(caller, target).effect).toBe(want);
  });

  it('names the deciding rule', () => {
    const r = rule('a.agents.internal', 'b.agents.internal', 'deny');
    const d = new PolicySet([r], Z).decide('a.agents.internal', 'b.agents.internal');
    expect(d.rule?.id).toBe(r.id);
    expect(new PolicySet([], Z).decide('a.agents.internal', 'b.agents.internal').rule).toBeUndefined();
  });
});

describe('normalisePattern', () => {
  it.each([
    ['A.Agents.Internal.', 'a.agents.internal'],
    ['*.Home.Internal.', '*.home.internal'],
    ['*', '*'],
    ['*.x', '*.x'],
  ])('%s -> %s', (p, want) => expect(normalisePattern(p)).toBe(want));
  it.each(['', 'a b', '*a.internal', 'a.*.internal', '**', '*.', 'x..y'])('rejects %j', (p) =>
    expect(normalisePattern(p)).toBeUndefined(),
  );
});
