import { BlockList, isIP } from 'node:net';

/** `::ffff:1.2.3.4` (an IPv4 client on a dual-stack socket) is 1.2.3.4. */
export function normalizeIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip;
}

/**
 * An allow list of bare IPs and CIDRs, IPv4 and IPv6 (`*` matches everything), built on
 * node's BlockList. Invalid entries are reported, not skipped silently.
 */
export class IpMatcher {
  private readonly list = new BlockList();
  readonly matchesAll: boolean;
  readonly isEmpty: boolean;

  constructor(rawEntries: readonly string[]) {
    const entries = rawEntries.map((e) => e.trim()).filter((e) => e !== '');
    this.matchesAll = entries.includes('*');
    this.isEmpty = entries.length === 0;
    for (const entry of entries) {
      if (entry === '*') continue;
      const [addr, bits, ...rest] = entry.split('/');
      const ip = normalizeIp(addr ?? '');
      const family = isIP(ip);
      if (family === 0 || rest.length > 0)
        throw new Error(`not an IP address or CIDR: ${JSON.stringify(entry)}`);
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (bits === undefined) {
        this.list.addAddress(ip, type);
      } else {
        const prefix = Number(bits);
        if (!/^\d+$/.test(bits) || prefix > (family === 4 ? 32 : 128)) {
          throw new Error(`bad prefix length in ${JSON.stringify(entry)}`);
        }
        this.list.addSubnet(ip, prefix, type);
      }
    }
  }

  matches(ip: string): boolean {
    if (this.matchesAll) return true;
    const addr = normalizeIp(ip);
    const family = isIP(addr);
    if (family === 0) return false;
    return this.list.check(addr, family === 4 ? 'ipv4' : 'ipv6');
  }
}
