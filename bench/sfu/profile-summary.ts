// bench/sfu/profile-summary.ts: where a profiled server's time went, from the .cpuprofile
// that `node --cpu-prof` writes at exit (run the bench with
// BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR"): self time per function and per area
// (the NATS client, the SFU relay, forwarding, the WebRTC binding, idle, GC), in percent of
// the sampled time and of the time not idle.
//
// A profile spans the process's life (tsx compiling at start, legs closing at the end):
// --last S counts only the S seconds before the profile's end less --tail T, which is
// where bench:sfu's measured window falls (it stops the servers within ~1 s after it).
//
//   npx tsx bench/sfu/profile-summary.ts DIR/*.cpuprofile [--top 15] [--last 10 --tail 1.5]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: 'string', default: '15' },
    last: { type: 'string' },
    tail: { type: 'string', default: '0' },
  },
});

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The area a function belongs to, from its file. */
function area(fn: string, url: string): string {
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'gc';
  if (fn === '(program)') return 'program (native, outside JS)';
  if (url.includes('@nats-io')) return 'nats client';
  if (url.includes('/media/relay/')) return 'sfu relay';
  if (url.includes('published-track') || url.includes('/media/webrtc/')) return 'sfu forwarding';
  if (url.includes('node-datachannel')) return 'webrtc binding (js)';
  if (url.startsWith('node:')) return 'node core';
  if (url.includes('node_modules')) return 'other modules';
  if (url === '') return 'native/builtin';
  return 'chorus other';
}

for (const file of positionals) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let total = 0;
  const at: number[] = [];
  let t = 0;
  for (const dt of p.timeDeltas) at.push((t += dt));
  const to = t - Number(values.tail) * 1e6;
  const from = values.last === undefined ? -Infinity : to - Number(values.last) * 1e6;
  for (let i = 0; i < p.samples.length; i++) {
    if (at[i]! < from || at[i]! > to) continue;
    const dt = p.timeDeltas[i] ?? 0;
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + dt);
    total += dt;
  }
  const byFn = new Map<string, number>();
  const byArea = new Map<string, number>();
  let idle = 0;
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const { functionName, url, lineNumber } = n.callFrame;
    const a = area(functionName, url);
    if (a === 'idle') idle += us;
    const name = `${functionName || '(anonymous)'} ${url.replace(/^.*\/(src|node_modules)\//, '$1/')}:${lineNumber + 1}`;
    byFn.set(name, (byFn.get(name) ?? 0) + us);
    byArea.set(a, (byArea.get(a) ?? 0) + us);
  }
  const busy = total - idle;
  const pct = (us: number, of: number): string => ((us / of) * 100).toFixed(1);
  console.log(`\n${file}: ${(total / 1e6).toFixed(1)} s sampled, ${pct(busy, total)} % not idle`);
  console.log('  area: % of sampled, % of busy');
  for (const [a, us] of [...byArea].sort((x, y) => y[1] - x[1]))
    console.log(
      `    ${a.padEnd(30)} ${pct(us, total).padStart(5)} ${a === 'idle' ? '' : pct(us, busy).padStart(5)}`,
    );
  console.log('  top functions by self time (% of busy):');
  for (const [name, us] of [...byFn]
    .filter(([n]) => !n.startsWith('(idle)'))
    .sort((x, y) => y[1] - x[1])
    .slice(0, Number(values.top)))
    console.log(`    ${pct(us, busy).padStart(5)}  ${name}`);
}
