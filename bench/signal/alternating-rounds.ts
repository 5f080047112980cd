// The A/B harness of the in-process Signal micro-benchmarks (write-path.ts, read-path.ts):
// each variant's server CPU and young-generation allocation per message, the variants
// alternating in rounds so a shared machine's load falls on all alike.
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

export interface RoundCost {
  /** This process's CPU (user + system) per message, ns. */
  cpuNs: number;
  /** Young generation allocated per message: scavenges x the fixed semi-space size. */
  allocBytes: number;
}

/** Counts this process's scavenges from now on (run with min = max semi-space size). */
export function scavengeCounter(): () => number {
  let scavenges = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries())
      if ((e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === 1) scavenges++;
  }).observe({ entryTypes: ['gc'] });
  return () => scavenges;
}

/** What `body` (which handles `messages` messages) costs per message. */
export async function costPerMessage(
  messages: number,
  semiMib: number,
  scavenges: () => number,
  body: () => Promise<void>,
): Promise<RoundCost> {
  const s0 = scavenges();
  const c0 = process.cpuUsage();
  await body();
  const c = process.cpuUsage(c0);
  return {
    cpuNs: ((c.user + c.system) * 1000) / messages,
    allocBytes: ((scavenges() - s0) * semiMib * 2 ** 20) / messages,
  };
}

/** Each variant once to warm up, then `rounds` rounds, the order reversed every other one. */
export async function alternatingRounds<V>(
  variants: Record<string, V>,
  rounds: number,
  run: (variant: V) => Promise<RoundCost>,
): Promise<Record<string, { cpuNs: number[]; allocBytes: number[] }>> {
  const results: Record<string, { cpuNs: number[]; allocBytes: number[] }> = {};
  for (const v of Object.values(variants)) await run(v);
  for (let r = 0; r < rounds; r++) {
    const order = Object.entries(variants);
    for (const [name, v] of r % 2 ? order.reverse() : order) {
      const x = await run(v);
      const e = (results[name] ??= { cpuNs: [], allocBytes: [] });
      e.cpuNs.push(Math.round(x.cpuNs));
      e.allocBytes.push(Math.round(x.allocBytes));
    }
  }
  return results;
}

/** The micro-benchmarks' common options: --batch, --messages, --rounds, --bytes, --semi-mib. */
export function roundOptions(defaultMessages: number): {
  BATCH: number;
  MESSAGES: number;
  ROUNDS: number;
  BYTES: number;
  SEMI_MIB: number;
} {
  const { values } = parseArgs({
    strict: false,
    allowPositionals: true,
    options: {
      batch: { type: 'string', default: '8' },
      messages: { type: 'string', default: String(defaultMessages) },
      rounds: { type: 'string', default: '4' },
      bytes: { type: 'string', default: '220' },
      'semi-mib': { type: 'string', default: '16' },
    },
  });
  return {
    BATCH: Number(values.batch),
    MESSAGES: Number(values.messages),
    ROUNDS: Number(values.rounds),
    BYTES: Number(values.bytes),
    SEMI_MIB: Number(values['semi-mib']),
  };
}
