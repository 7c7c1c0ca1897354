import { describe, expect, it } from 'vitest';
import { nextSerial, serialGt, serialLt, toSerial } from '../../dns/serial.js';

describe('RFC 1982 serials', () => {
  it.each([
    [1, 2, true],
    [2, 1, false],
    [0xffffffff, 0, true],
    [0xffffff00, 5, true],
    [5, 0xffffff00, false],
    [7, 7, false],
  ])('%d < %d is %s', (a, b, want) => {
    expect(serialLt(a, b)).toBe(want);
    if (a !== b) expect(serialGt(b, a)).toBe(want);
  });
  it('maps the registry sequence mod 2^32 and never goes backwards', () => {
    expect(toSerial(2 ** 32 + 5)).toBe(5);
    expect(nextSerial(10, 11)).toBe(11);
    expect(nextSerial(10, 10)).toBe(11);
    expect(nextSerial(10, 3)).toBe(11);
    expect(nextSerial(0xffffffff, 2 ** 32 + 3)).toBe(3);
  });
});
