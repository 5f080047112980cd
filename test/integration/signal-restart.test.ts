import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { startTestServer } from '../fixtures/test-server.js';
import { TestSocket } from '../fixtures/ws-client.js';

it('a registered user and their session survive a server restart', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'chorus-restart-'));
  try {
    const first = await startTestServer({}, { dataDir });
    const reg = await fetch(`${first.url}/v1/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"username":"durable-dora"}',
    });
    expect(reg.status).toBe(200);
    const cookie = (reg.headers.get('set-cookie') ?? '').split(';')[0]!;
    await first.close();

    const second = await startTestServer({}, { dataDir });
    try {
      // Same cookie still valid: the identity and the signing secret were both kept.
      expect((await fetch(`${second.url}/v1/user`, { headers: { cookie } })).status).toBe(200);
      const taken = await fetch(`${second.url}/v1/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"username":"durable-dora"}',
      });
      expect(await taken.json()).toEqual({ status: 'TAKEN', message: '' });
      const s = await TestSocket.open(`${second.wsUrl}/v1/connect`, { cookie });
      s.send({ target: 'durable-dora', type: 'echo', payload: 'after restart' });
      expect(JSON.parse(await s.next()).payload).toBe('after restart');
      s.close();
    } finally {
      await second.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
