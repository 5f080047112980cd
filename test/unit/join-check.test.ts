import type { KV } from '@nats-io/kv';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { LocalBus } from '../../src/ports/bus/local-bus.js';
import { checkJoin } from '../../src/ports/membership/join-check.js';
import type { NodeInfo } from '../../src/ports/membership/membership.js';

const self = {
  id: 'node-x',
  instance: 'i1',
  httpUrl: 'http://127.0.0.1:1',
  webrtcAddress: '127.0.0.1',
  webrtcPort: 1,
  load: { connections: 0, eventLoopUtilization: 0 },
  version: '0.0.0',
  protocol: 1,
  startedAt: 0,
} as unknown as NodeInfo;

/** A node list with no entries whose first write fails as `failure` does. */
function kvFailingWith(failure: Error): KV {
  return {
    get: () => Promise.resolve(null),
    create: () => Promise.reject(failure),
    update: () => Promise.reject(failure),
  } as unknown as KV;
}

describe('checkJoin', () => {
  it('says what went wrong when the first write fails for another reason than a lost race', async () => {
    const bus = new LocalBus(pino({ level: 'silent' }));
    const err = await checkJoin(
      kvFailingWith(new Error('timeout')),
      () => Promise.resolve([]),
      bus,
      self,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/cannot announce node node-x in the cluster/);
    expect((err as Error).message).not.toMatch(/taken by another node/);
  });
});
