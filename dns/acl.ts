/**
 * Transfer ACL: loopback may always transfer (TSIG optional); any other address needs an entry in
 * `transferAcl` (IP or CIDR) AND a valid TSIG signature.
 */
import { BlockList, isIP } from 'node:net';
import { DNS_ERR_BAD_OPTION } from './errors.js';

export type TransferDecision = 'allow' | 'need-tsig' | 'deny';

function unmap(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip;
}

export function isLoopback(ip: string): boolean {
  const a = unmap(ip);
  return a === '::1' || /^127\./.test(a);
}

export class TransferAcl {
  private readonly list = new BlockList();
  private readonly empty: boolean;

  constructor(entries: readonly string[] = []) {
    this.empty = entries.length === 0;
    for (const e of entries) {
      const [addr, bits] = e.split('/');
      const fam = isIP(addr ?? '');
      if (!addr || fam === 0) throw DNS_ERR_BAD_OPTION(`transferAcl entry "${e}"`);
      const type = fam === 4 ? 'ipv4' : 'ipv6';
      if (bits === undefined) this.list.addAddress(addr, type);
      else {
        const n = Number(bits);
        if (!Number.isInteger(n) || n < 0 || n > (fam === 4 ? 32 : 128))
          throw DNS_ERR_BAD_OPTION(`transferAcl entry "${e}"`);
        this.list.addSubnet(addr, n, type);
      }
    }
  }

  listed(ip: string): boolean {
    if (this.empty) return false;
    const a = unmap(ip);
    const fam = isIP(a);
    if (fam === 0) return false;
    return this.list.check(a, fam === 4 ? 'ipv4' : 'ipv6');
  }

  /**
   * @param signed the request carried a TSIG that verified
   */
  decide(ip: string, signed: boolean): TransferDecision {
    if (isLoopback(ip)) return 'allow';
    if (!this.listed(ip)) return 'deny';
    return signed ? 'allow' : 'need-tsig';
  }
}
