import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../bench/lib/server-process.js';
import { loadConfig } from '../../src/config/load-config.js';
import { LocalBus } from '../../src/ports/bus/local-bus.js';
import { NatsBus } from '../../src/ports/bus/nats-bus.js';
import { createPorts } from '../../src/ports/create-ports.js';
import { nodeIdFor } from '../../src/ports/node-id.js';
import { closePorts } from '../../src/ports/ports.js';
import { KvStore } from '../../src/ports/store/kv-store.js';
import { LmdbStore } from '../../src/ports/store/lmdb-store.js';
import { runChorusToExit } from '../fixtures/chorus-process.js';
import { NatsServerProcess } from '../fixtures/nats-server.js';
import { hasTool } from '../fixtures/system-tools.js';

const log = pino({ level: 'silent' });
const root = mkdtempSync(join(tmpdir(), 'chorus-cluster-startup-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const dataDir = (name: string): string => mkdtempSync(join(root, `${name}-`));

/** Exit 2, the expected line on its own, and no stack anywhere in the output. */
function expectOneLine(r: { code: number | null; output: string }, line: RegExp): void {
  expect(r.code, r.output).toBe(2);
  expect(r.output).toMatch(line);
  expect(r.output).not.toMatch(/^\s+at /m);
}

describe('node id', () => {
  it('is CLUSTER_NODE_ID when set, else generated once and kept in the data directory', () => {
    const dir = dataDir('id');
    expect(nodeIdFor('given-1', dir)).toBe('given-1');
    const first = nodeIdFor(undefined, dir);
    expect(first).toMatch(/^node-[0-9a-f]{12}$/);
    expect(readFileSync(join(dir, 'node-id'), 'utf8').trim()).toBe(first);
    expect(nodeIdFor(undefined, dir)).toBe(first);
    expect(nodeIdFor(undefined, dataDir('other'))).not.toBe(first);
  });
});

describe('createPorts', () => {
  it('picks the in-process bus and LMDB without a cluster URL, and needs no NATS', async () => {
    const dir = dataDir('single');
    const ports = await createPorts(loadConfig({ overrides: { store: { dataDir: dir } } }), log);
    try {
      expect(ports.bus).toBeInstanceOf(LocalBus);
      expect(ports.store).toBeInstanceOf(LmdbStore);
      expect(ports.cluster).toBeUndefined();
      expect(ports.nodeId).toBe(readFileSync(join(dir, 'node-id'), 'utf8').trim());
    } finally {
      await closePorts(ports);
    }
  });

  it.runIf(hasTool('nats-server', 'nats-server'))(
    'picks the NATS bus and the KV store over one connection with a cluster URL',
    async () => {
      const nats = new NatsServerProcess({ jetstream: true });
      await nats.start();
      try {
        const config = loadConfig({
          overrides: {
            store: { dataDir: dataDir('cluster') },
            cluster: { natsUrl: nats.url, nodeId: 'n-7' },
          },
        });
        const ports = await createPorts(config, log);
        try {
          expect(ports.bus).toBeInstanceOf(NatsBus);
          expect(ports.store).toBeInstanceOf(KvStore);
          expect(ports.nodeId).toBe('n-7');
          expect(ports.cluster?.connected).toBe(true);
          // The bites sink rides on the same connection (NATS defaults to the cluster's URL).
          expect(ports.sink.connected).toBe(true);
          await ports.store.bucket<string>('smoke').put('k', 'v');
          expect(await ports.store.bucket<string>('smoke').get('k')).toBe('v');
        } finally {
          await closePorts(ports);
        }
        expect(ports.cluster?.connected).toBe(false);
      } finally {
        await nats.dispose();
      }
    },
  );
});

describe.runIf(hasTool('nats-server', 'nats-server'))(
  'cluster start-up failures exit 2 with one line',
  () => {
    const base = (): Record<string, string> => ({
      HTTP_PORT: '0',
      BIND_ADDRESS: '127.0.0.1',
      DATA_DIR: dataDir('d'),
    });

    it('NATS not reachable within CLUSTER_CONNECT_TIMEOUT_SECONDS', async () => {
      const port = await freePort(); // nothing listens there
      const r = await runChorusToExit({
        ...base(),
        CLUSTER_NATS_URL: `nats://127.0.0.1:${port}`,
        CLUSTER_CONNECT_TIMEOUT_SECONDS: '1',
      });
      expectOneLine(
        r,
        new RegExp(
          `^chorus: cannot connect to NATS at nats://127\\.0\\.0\\.1:${port} within 1 s \\(.+\\); start nats-server with -js there, or unset CLUSTER_NATS_URL to run one node$`,
          'm',
        ),
      );
    });

    it('a NATS server without JetStream', async () => {
      const plain = new NatsServerProcess({ jetstream: false });
      await plain.start();
      try {
        const r = await runChorusToExit({ ...base(), CLUSTER_NATS_URL: plain.url });
        expectOneLine(
          r,
          /^chorus: JetStream is not enabled on the NATS server at 127\.0\.0\.1:\d+ \(.+\); start nats-server with -js \(--jetstream\), or unset CLUSTER_NATS_URL to run one node$/m,
        );
      } finally {
        await plain.dispose();
      }
    });
  },
);
