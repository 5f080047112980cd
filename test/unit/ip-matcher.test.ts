import { describe, expect, it } from 'vitest';
import { IpMatcher, normalizeIp } from '../../src/lib/ip-matcher.js';
import { IpConnectionLimiter } from '../../src/lib/ip-connection-limiter.js';

describe('IpMatcher', () => {
  it('matches bare IPs and CIDRs, IPv4 and IPv6, and IPv4-mapped addresses', () => {
    const m = new IpMatcher(['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8']);
    expect(m.matches('127.0.0.1')).toBe(true);
    expect(m.matches('::ffff:127.0.0.1')).toBe(true);
    expect(m.matches('10.200.3.4')).toBe(true);
    expect(m.matches('11.0.0.1')).toBe(false);
    expect(m.matches('::1')).toBe(true);
    expect(m.matches('fd12:3456::1')).toBe(true);
    expect(m.matches('fe80::1')).toBe(false);
    expect(m.matches('not an ip')).toBe(false);
  });

  it('treats * as everyone and rejects malformed entries', () => {
    expect(new IpMatcher(['*']).matches('203.0.113.9')).toBe(true);
    expect(() => new IpMatcher(['10.0.0.0/33'])).toThrow(/prefix/);
    expect(() => new IpMatcher(['banana'])).toThrow(/not an IP/);
    expect(normalizeIp('::ffff:1.2.3.4')).toBe('1.2.3.4');
  });
});

describe('IpConnectionLimiter', () => {
  it('counts per IP, releases, and exempts listed addresses', () => {
    const l = new IpConnectionLimiter(2, ['10.0.0.0/8']);
    expect([l.acquire('1.1.1.1'), l.acquire('::ffff:1.1.1.1'), l.acquire('1.1.1.1')]).toEqual([
      true,
      true,
      false,
    ]);
    l.release('1.1.1.1');
    expect(l.acquire('1.1.1.1')).toBe(true);
    for (let i = 0; i < 10; i++) expect(l.acquire('10.1.1.1')).toBe(true);
    expect(l.held('10.1.1.1')).toBe(0);
  });
});
