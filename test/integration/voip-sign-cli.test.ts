import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';

const run = promisify(execFile);
let t: TestServer;
let dir: string;

beforeAll(async () => {
  t = await startTestServer();
  dir = mkdtempSync(join(tmpdir(), 'chorus-voip-sign-'));
});
afterAll(async () => {
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** `chorus voip sign`, as a person runs it: a real process; its output parsed as `eval` would. */
async function sign(...args: string[]): Promise<Record<string, string>> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/main.ts', 'voip', 'sign', ...args]);
  return Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .map((l) => l.split('=', 2) as [string, string]),
  );
}

/** docs/voip.md's curl example: PCM into a room, as a streaming POST. */
async function upRoom(me: string, sig: string): Promise<number> {
  const q = new URLSearchParams({ PKey: me, Signature: sig, roomID: 'sign-cli', rate: '16000' });
  const res = await fetch(`${t.url}/upRoom?${q.toString()}`, { method: 'POST', body: Buffer.alloc(3200) });
  await res.arrayBuffer();
  return res.status;
}

describe('chorus voip sign', () => {
  it('prints ME and SIG that the VOIP routes accept, keeping the key between runs', async () => {
    const key = join(dir, 'key');
    const first = await sign('--server', t.url, '--key', key);
    expect(Object.keys(first)).toEqual(['ME', 'SIG']);
    expect(first.ME).toMatch(/^0[23][0-9a-f]{64}$/);
    expect(first.SIG).toMatch(/^30[0-9a-f]+$/);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    // The curl example, with what it printed.
    expect(await upRoom(first.ME!, first.SIG!)).toBe(200);

    const second = await sign('--server', t.url, '--key', key);
    expect(second.ME).toBe(first.ME);
    expect(await upRoom(second.ME!, second.SIG!)).toBe(200);
    // A signature of something else is refused: the 200s above were the signature's doing.
    expect(await upRoom(second.ME!, first.SIG!)).not.toBe(200);
  }, 60_000);

  it('says in one line, exit 1, when the server cannot be reached or the key file is not a key', async () => {
    const bad = join(dir, 'not-a-key');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(bad, 'hello');
    for (const args of [
      ['--server', 'http://127.0.0.1:1', '--key', join(dir, 'k2')],
      ['--server', t.url, '--key', bad],
    ]) {
      const err = await sign(...args).then(
        () => undefined,
        (e: { code: number; stderr: string }) => e,
      );
      expect(err?.code).toBe(1);
      expect(err?.stderr).toMatch(/^chorus voip sign: .+\n$/);
    }
  }, 60_000);
});
