import { IpMatcher, normalizeIp } from './ip-matcher.js';

/** Counts concurrent connections per client IP, with a list of exempt addresses. */
export class IpConnectionLimiter {
  private readonly counts = new Map<string, number>();
  private readonly exempt: IpMatcher;

  constructor(
    private readonly max: number,
    exempt: readonly string[],
  ) {
    this.exempt = new IpMatcher(exempt);
  }

  /** Takes a slot for the IP; false when it already holds the maximum. */
  acquire(ip: string): boolean {
    const key = normalizeIp(ip);
    if (this.exempt.matches(key)) return true;
    const n = this.counts.get(key) ?? 0;
    if (n >= this.max) return false;
    this.counts.set(key, n + 1);
    return true;
  }

  release(ip: string): void {
    const key = normalizeIp(ip);
    if (this.exempt.matches(key)) return;
    const n = this.counts.get(key) ?? 0;
    if (n <= 1) this.counts.delete(key);
    else this.counts.set(key, n - 1);
  }

  held(ip: string): number {
    return this.counts.get(normalizeIp(ip)) ?? 0;
  }
}
