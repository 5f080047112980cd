import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccessToken } from '../../src/api/chorus/access-token.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';

const run = promisify(execFile);
const KEY = 'load-key';
const SECRET = 'a-secret-of-at-least-thirty-two-characters';

let ts: TestServer;
beforeAll(async () => {
  ts = await startTestServer({
    chorus: { apiKeys: [`${KEY}:${SECRET}`] },
    webrtc: { bindAddress: '127.0.0.1' },
  });
});
afterAll(async () => ts.close());

/** `chorus load-test ...` as a person runs it: a real process, keys from its environment. */
async function loadTest(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', 'tsx', 'src/main.ts', 'load-test', ...args],
      { env: { ...process.env, CHORUS_API_KEYS: `${KEY}:${SECRET}`, CHORUS_URL: ts.url }, timeout: 120_000 },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The table's row `name`: its MIN, P50, P99 and MAX. */
function row(stdout: string, name: string): number[] {
  const line = stdout.split('\n').find((l) => l.startsWith(name));
  if (!line) throw new Error(`no row ${name} in:\n${stdout}`);
  return line.slice(name.length).trim().split(/\s+/).map(Number);
}

const roomNames = async (): Promise<string[]> => {
  const admin = await createAccessToken(KEY, SECRET, { grants: { roomList: true }, ttlSeconds: 60 });
  const res = await fetch(`${ts.url}/chorus/v1/rooms`, { headers: { authorization: `Bearer ${admin}` } });
  return ((await res.json()) as { rooms: { name: string }[] }).rooms.map((r) => r.name);
};

describe('chorus load-test', () => {
  it('runs 1 publisher and 2 subscribers over WHIP/WHEP and reports ~0 % loss and their bitrate', async () => {
    const { code, stdout, stderr } = await loadTest(
      '--room',
      'lt',
      '--publishers',
      '1',
      '--subscribers',
      '2',
      '--seconds',
      '4',
      '--video-kbps',
      '500',
    );
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toMatch(/publishers 1\/1 joined, subscribers 2\/2 joined/);
    const loss = row(stdout, 'packets lost (%)');
    expect(loss).toHaveLength(4);
    expect(loss[3]).toBeLessThan(1);
    const kbps = row(stdout, 'received (kbit/s)');
    // 500 kbit/s of video and 50 audio packets/s of 172 bytes (~69 kbit/s): each subscriber gets most of it.
    expect(kbps[0]).toBeGreaterThan(300);
    expect(kbps[3]).toBeLessThan(1000);
    const joins = row(stdout, 'subscriber join (ms)');
    expect(joins[0]).toBeGreaterThan(0);
    // The room it made is gone again.
    expect(await roomNames()).not.toContain('lt');
  }, 180_000);

  it('prints --help, refuses bad arguments with 2 and reports failed joins with 1', async () => {
    const help = await loadTest('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: chorus load-test/);
    const bad = await loadTest('--publishers', '0');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--publishers 0: expected a whole number from 1/);
    expect((await loadTest('--token', 'a,b', '--subscribers', '2')).stderr).toMatch(/expected 3 tokens/);
    // Tokens for a room that does not exist: nobody joins, each failure is listed, exit 1.
    const t = (identity: string, grants: object) =>
      createAccessToken(KEY, SECRET, { identity, room: 'absent', grants, ttlSeconds: 60 });
    const tokens = [
      await t('p', { roomJoin: true, canPublish: true }),
      await t('s', { roomJoin: true, canSubscribe: true }),
    ];
    const failed = await loadTest(
      '--room',
      'absent',
      '--subscribers',
      '1',
      '--seconds',
      '1',
      '--token',
      tokens.join(','),
    );
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/publishers 0\/1 joined, subscribers 0\/1 joined/);
    expect(failed.stdout).toMatch(/failed: publisher p: HTTP 404: .*no room absent/);
    expect(failed.stdout).toMatch(/failed: subscriber 0: its publisher p did not join/);
  }, 180_000);
});
