import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { StartupError } from '../../src/server/startup-error.js';
import { planWorkers, processCount } from '../../src/server/worker-plan.js';

const NATS = 'nats://127.0.0.1:4222';
const config = (env: Record<string, string> = {}) => loadConfig({ env, dotenvPath: '/nonexistent/.env' });

describe('planWorkers (--processes N)', () => {
  it('gives worker i the id <machine>-<i>, WEBRTC_UDP_PORT + i and the NATS URL', () => {
    const plans = planWorkers(config({ WEBRTC_UDP_PORT: '7882' }), 3, 'm1', NATS);
    expect(plans.map((p) => p.nodeId)).toEqual(['m1-0', 'm1-1', 'm1-2']);
    expect(plans.map((p) => p.env.WEBRTC_UDP_PORT)).toEqual(['7882', '7883', '7884']);
    for (const p of plans) {
      expect(p.env.CLUSTER_NATS_URL).toBe(NATS);
      expect(p.env.CLUSTER_NODE_ID).toBe(p.nodeId);
      expect(p.env.CHORUS_PROCESSES).toBe('1');
      expect(p.env.METRICS_PORT).toBeUndefined();
    }
  });

  it('slices WEBRTC_PORT_RANGE, offsets METRICS_PORT, keeps port 0 at 0', () => {
    const plans = planWorkers(
      config({ WEBRTC_PORT_RANGE: '50000-50009', METRICS_PORT: '9100' }),
      3,
      'm',
      NATS,
    );
    expect(plans.map((p) => p.env.WEBRTC_PORT_RANGE)).toEqual(['50000-50002', '50003-50005', '50006-50008']);
    expect(plans.map((p) => p.udpPort)).toEqual([50000, 50003, 50006]);
    expect(plans.map((p) => p.env.METRICS_PORT)).toEqual(['9100', '9101', '9102']);
    expect(planWorkers(config({ WEBRTC_UDP_PORT: '0' }), 2, 'm', NATS).map((p) => p.udpPort)).toEqual([0, 0]);
  });

  it('refuses what cannot work with one line: ports past 65535, a range too small, an id too long', () => {
    const cases: Array<[Record<string, string>, number, string, RegExp]> = [
      [
        { WEBRTC_UDP_PORT: '65534' },
        3,
        'm',
        /WebRTC UDP ports 65534-65536, past 65535: set a lower WEBRTC_UDP_PORT/,
      ],
      [
        { WEBRTC_PORT_RANGE: '50000-50001' },
        3,
        'm',
        /WEBRTC_PORT_RANGE 50000-50001 has fewer ports than the 3 processes/,
      ],
      [{ METRICS_PORT: '65535' }, 2, 'm', /metrics ports 65535-65536, past 65535/],
      [{}, 10, 'x'.repeat(63), /too long for 10 processes.*set a shorter CLUSTER_NODE_ID/],
    ];
    for (const [env, count, id, message] of cases) {
      let thrown: unknown;
      try {
        planWorkers(config(env), count, id, NATS);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(StartupError);
      expect((thrown as Error).message).toMatch(message);
      expect((thrown as Error).message).not.toContain('\n');
    }
  });
});

describe('CHORUS_PROCESSES', () => {
  it('is 1 by default, a count, or auto = one per core; anything else is a config error', () => {
    expect(processCount(config().cluster.processes)).toBe(1);
    expect(processCount(config({ CHORUS_PROCESSES: '4' }).cluster.processes)).toBe(4);
    expect(processCount(config({ CHORUS_PROCESSES: 'auto' }).cluster.processes)).toBe(availableParallelism());
    for (const bad of ['0', 'many', '2.5', '-1']) {
      expect(() => config({ CHORUS_PROCESSES: bad })).toThrow(/CHORUS_PROCESSES/);
    }
  });
});
