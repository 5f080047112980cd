// The cluster benches' two layouts, run one after the other in the same run so that their
// figures compare on the same (shared) machine at the same moment.
import { NatsServerProcess } from '../../test/fixtures/nats-server.js';
import { startBenchServer, type BenchServer } from './server-process.js';

/** Two Chorus processes joined over a nats-server started for them. */
export interface TwoNodes {
  a: BenchServer;
  b: BenchServer;
  natsPid: number;
}

/**
 * Measures on one Chorus process (`onOne`), stops it, then on two ('bench-a' and 'bench-b',
 * both with `env`, over a nats-server with JetStream) (`onTwo`). Every process it starts is
 * stopped, whatever the measures throw.
 */
export async function oneNodeThenTwo<M>(
  env: Record<string, string>,
  onOne: (one: BenchServer) => Promise<M>,
  onTwo: (nodes: TwoNodes) => Promise<M>,
): Promise<{ single: M; spread: M }> {
  const one = await startBenchServer(env);
  let single: M;
  try {
    single = await onOne(one);
  } finally {
    await one.stop();
  }
  const nats = new NatsServerProcess({ jetstream: true });
  await nats.start();
  const nodes: BenchServer[] = [];
  try {
    for (const id of ['bench-a', 'bench-b'])
      nodes.push(await startBenchServer({ ...env, CLUSTER_NATS_URL: nats.url, CLUSTER_NODE_ID: id }));
    const [a, b] = nodes as [BenchServer, BenchServer];
    return { single, spread: await onTwo({ a, b, natsPid: nats.pid }) };
  } finally {
    for (const n of nodes) await n.stop();
    await nats.dispose();
  }
}
