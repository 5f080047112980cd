import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';

const run = promisify(execFile);
const KEYS = 'cli-key:a-secret-of-at-least-thirty-two-characters,second:another-secret-of-at-least-32-chars!';
const SECRET = new TextEncoder().encode('a-secret-of-at-least-thirty-two-characters');

let ts: TestServer;
beforeAll(async () => {
  ts = await startTestServer({ chorus: { apiKeys: KEYS.split(',') } });
});
afterAll(async () => ts.close());

/** `chorus ...` as a person runs it (a real process, settings from its environment). */
async function chorus(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
      env: { ...process.env, CHORUS_API_KEYS: KEYS, CHORUS_URL: ts.url },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('chorus token create', () => {
  it('prints only a JWT with join, publish and subscribe in the room for 6 h by default', async () => {
    const { code, stdout } = await chorus('token', 'create', '--room', 'demo', '--identity', 'alice');
    expect(code).toBe(0);
    const token = stdout.trim();
    expect(stdout).toBe(`${token}\n`);
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'HS256', kid: 'cli-key' });
    const { payload } = await jwtVerify(token, SECRET);
    expect(payload).toMatchObject({
      sub: 'alice',
      room: 'demo',
      grants: { roomJoin: true, canPublish: true, canSubscribe: true },
    });
    expect(Object.keys(payload.grants as object).sort()).toEqual(['canPublish', 'canSubscribe', 'roomJoin']);
    expect(payload.exp! - payload.iat!).toBe(6 * 3600);
  });

  it('takes --grants, --ttl, --name, --key; the token is accepted by the server', async () => {
    const { code, stdout } = await chorus(
      'token',
      'create',
      '--grants',
      'create,list',
      '--ttl',
      '10m',
      '--name',
      'Ops',
      '--key',
      'second',
    );
    expect(code).toBe(0);
    const token = stdout.trim();
    expect(decodeProtectedHeader(token).kid).toBe('second');
    const res = await fetch(`${ts.url}/chorus/v1/rooms`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'from-cli', metadata: 'hello' }),
    });
    expect(res.status).toBe(201);
  });

  it('refuses bad arguments with exit 2 and the usage; --help exits 0', async () => {
    const noRoom = await chorus('token', 'create', '--identity', 'a');
    expect(noRoom.code).toBe(2);
    expect(noRoom.stderr).toMatch(/--room is required/);
    expect(noRoom.stdout).toBe('');
    const badGrant = await chorus('token', 'create', '--room', 'r', '--identity', 'a', '--grants', 'root');
    expect(badGrant.code).toBe(2);
    expect(badGrant.stderr).toMatch(/unknown grant root/);
    const badTtl = await chorus('token', 'create', '--room', 'r', '--identity', 'a', '--ttl', 'soon');
    expect(badTtl.code).toBe(2);
    const badRoom = await chorus('token', 'create', '--room', 'a/b', '--identity', 'a');
    expect(badRoom.code).toBe(2);
    const help = await chorus('token', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: chorus token create/);
  });
});

describe('chorus rooms', () => {
  it('lists the rooms as a table and closes one', async () => {
    const created = await chorus('token', 'create', '--grants', 'create');
    for (const name of ['cli-a', 'cli-b']) {
      const res = await fetch(`${ts.url}/chorus/v1/rooms`, {
        method: 'POST',
        headers: { authorization: `Bearer ${created.stdout.trim()}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name, metadata: `meta of ${name}` }),
      });
      expect(res.status).toBe(201);
    }
    const list = await chorus('rooms', 'list');
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+CREATED\s+MAX\s+METADATA$/);
    expect(lines.find((l) => l.startsWith('cli-a '))).toMatch(
      /^cli-a\s+\d{4}-\d\d-\d\dT[\d:]+Z\s+-\s+meta of cli-a$/,
    );
    expect(lines.some((l) => l.startsWith('cli-b '))).toBe(true);

    const closed = await chorus('rooms', 'close', 'cli-a', '--url', ts.url);
    expect(closed).toMatchObject({ code: 0, stdout: 'closed cli-a\n' });
    const after = await chorus('rooms', 'list', '--json');
    const names = (JSON.parse(after.stdout) as { rooms: { name: string }[] }).rooms.map((r) => r.name);
    expect(names).toContain('cli-b');
    expect(names).not.toContain('cli-a');

    const again = await chorus('rooms', 'close', 'cli-a');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/404 .*no room cli-a/);
  });

  it('says so when the server is not there or the usage is wrong', async () => {
    const down = await chorus('rooms', 'list', '--url', 'http://127.0.0.1:1');
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^chorus rooms: /);
    const bad = await chorus('rooms', 'open', 'x');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/usage: chorus rooms list/);
  });
});
