// What one idle Signal connection holds on the server's heap (#17.1): heap snapshots
// of the server before and after N connections open, objects counted by constructor.
//
//   npx tsx bench/signal/heap-per-connection.ts [--connections 2000] [--top 30]
import { parseArgs } from 'node:util';
import { readdirSync, readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startBenchServer, rssBytes } from '../lib/server-process.js';

const { values } = parseArgs({
  options: { connections: { type: 'string', default: '2000' }, top: { type: 'string', default: '30' } },
});
const N = Number(values.connections);
const dir = mkdtempSync(join(tmpdir(), 'chorus-heap-'));
process.env.BENCH_NODE_ARGS = `${process.env.BENCH_NODE_ARGS ?? ''} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${dir}`;
const server = await startBenchServer({ SIGNAL_RATE_LIMIT: '100000', SIGNAL_RATE_BURST: '100000' });

async function register(name: string): Promise<string> {
  const res = await fetch(`${server.url}/v1/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: name }),
  });
  return (res.headers.get('set-cookie') ?? '').split(';')[0]!;
}
function open(cookie: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/connect`, { headers: { cookie } });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}
/** Asks for a snapshot and waits until the file is complete. */
async function snapshot(): Promise<string> {
  const before = new Set(readdirSync(dir));
  process.kill(server.pid, 'SIGUSR2');
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    const file = readdirSync(dir).find((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
    if (!file) continue;
    const path = join(dir, file);
    try {
      JSON.parse(readFileSync(path, 'utf8'));
      return path;
    } catch {
      /* still being written */
    }
  }
}
/** Self size and count per constructor (node name) of a snapshot. */
function census(path: string): Map<string, { count: number; bytes: number }> {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: (string | string[])[] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0] as string[];
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt!]!]!;
    const name =
      type === 'object' || type === 'closure' ? snap.strings[snap.nodes[i + nameAt!]!]! : `(${type})`;
    const key = type === 'closure' ? `closure ${name}` : name;
    const e = out.get(key) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += snap.nodes[i + sizeAt!]!;
    out.set(key, e);
  }
  return out;
}

try {
  const cookies: string[] = [];
  for (let i = 0; i < N; i++) cookies.push(await register(`h${i}`));
  const rss0 = rssBytes(server.pid);
  const before = census(await snapshot());
  const sockets: WebSocket[] = [];
  for (let i = 0; i < N; i += 100) sockets.push(...(await Promise.all(cookies.slice(i, i + 100).map(open))));
  await new Promise((r) => setTimeout(r, 2000));
  const rss1 = rssBytes(server.pid);
  const after = census(await snapshot());
  const rows = [...after]
    .map(([name, a]) => {
      const b = before.get(name) ?? { count: 0, bytes: 0 };
      return { name, perConnection: (a.count - b.count) / N, bytesPerConnection: (a.bytes - b.bytes) / N };
    })
    .sort((x, y) => y.bytesPerConnection - x.bytesPerConnection);
  const total = rows.reduce((s, r) => s + r.bytesPerConnection, 0);
  console.log(
    `node ${process.version}; ${N} connections; heap per connection ${total.toFixed(0)} B; RSS per connection ${((rss1 - rss0) / N).toFixed(0)} B (snapshots force full GCs)`,
  );
  for (const r of rows.slice(0, Number(values.top)))
    console.log(
      `${r.bytesPerConnection.toFixed(0).padStart(6)} B ${r.perConnection.toFixed(2).padStart(6)} x ${r.name}`,
    );
  for (const s of sockets) s.terminate();
} finally {
  await server.stop();
}
