import { describe, expect, it } from 'vitest';
import { bestOf, comparePaths, hasLoop, normUri, prepend, validPath } from '../../src/federation/path.js';
import { mayExportTo } from '../../src/federation/split-horizon.js';

const A = 'http://a.example:1';
const B = 'http://b.example:2';
const C = 'http://c.example:3';

describe('PATH', () => {
  it.each([
    ['HTTP://A.example:1/', 'http://a.example:1'],
    ['https://gw.example/amsp/', 'https://gw.example/amsp'],
  ])('normalises %s', (i, o) => expect(normUri(i)).toBe(o));

  it('prepends the sender', () => expect(prepend(A, [B, C])).toEqual([A, B, C]));

  it.each([
    { self: A, path: [B, C], loop: false },
    { self: A, path: [B, A], loop: true },
    { self: 'HTTP://a.example:1/', path: [A], loop: true },
    { self: A, path: [], loop: false },
  ])('loop check $self in $path -> $loop', ({ self, path, loop }) => expect(hasLoop(self, path)).toBe(loop));

  it.each([
    { path: [A], ok: true },
    { path: [], ok: false },
    { path: [A, B, A], ok: false },
    { path: Array.from({ length: 33 }, (_, i) => `http://g${i}.example`), ok: false },
  ])('valid path $path -> $ok', ({ path, ok }) => expect(validPath(path)).toBe(ok));

  it.each([
    { name: 'shorter wins', a: { peer: C, path: [C] }, b: { peer: A, path: [A, B] }, better: 'a' },
    { name: 'tie: lower neighbour URI', a: { peer: B, path: [B, C] }, b: { peer: A, path: [A, C] }, better: 'b' },
    { name: 'tie on neighbour: lower path', a: { peer: A, path: [A, C] }, b: { peer: A, path: [A, B] }, better: 'b' },
  ])('$name', ({ a, b, better }) => {
    expect(comparePaths(a, b) < 0 ? 'a' : 'b').toBe(better);
    expect(bestOf([a, b])).toBe(better === 'a' ? a : b);
    expect(bestOf([b, a])).toBe(better === 'a' ? a : b);
  });
});

describe('split horizon', () => {
  it.each([
    { target: A, from: A, path: [A], ok: false },
    { target: B, from: A, path: [A], ok: true },
    { target: C, from: A, path: [A, C], ok: false },
    { target: B, from: null, path: [], ok: true },
  ])('to $target learned from $from via $path -> $ok', ({ target, from, path, ok }) =>
    expect(mayExportTo(target, from, path)).toBe(ok),
  );
});
