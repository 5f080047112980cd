import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { KeyUser } from '../fixtures/voip-client.js';

describe('VOIP display names (the /call/ page shows names, not keys)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  const lookup = async (keys: string): Promise<{ status: number; body: unknown }> => {
    const res = await fetch(`${server.url}/displayNames?keys=${keys}`);
    return { status: res.status, body: await res.json() };
  };

  it('a key names itself over a signed ticket, and anyone reads the names of a list of keys', async () => {
    const ada = new KeyUser(server.url);
    const bob = new KeyUser(server.url);
    const set = await ada.post('/setDisplayName', {
      name: 'Ada L.',
      Signature: ada.sign(await ada.getTicket()),
    });
    expect(set).toEqual({ status: 200, text: 'OK' });
    // Unknown keys are left out, malformed ones ignored; upper-case hex is the same key.
    expect(await lookup(`${ada.id.toUpperCase()},${bob.id},nonsense`)).toEqual({
      status: 200,
      body: { [ada.id]: 'Ada L.' },
    });
  });

  it('refuses a name not signed by the key, and a bad name', async () => {
    const mallory = new KeyUser(server.url);
    const victim = new KeyUser(server.url);
    await victim.getTicket();
    // Mallory claims the victim's key with her own signature.
    const forged = await fetch(`${server.url}/setDisplayName`, {
      method: 'POST',
      headers: { PKey: victim.id, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ name: 'Not Me', Signature: mallory.sign(victim.ticket) }).toString(),
    });
    expect(forged.status).toBe(403); // the VOIP surface's answer to a bad signature
    expect((await victim.post('/setDisplayName', { name: 'x' })).status).toBe(403); // no signature
    for (const name of ['', ' ', 'a'.repeat(41), 'tab\there']) {
      const r = await victim.post('/setDisplayName', {
        name,
        Signature: victim.sign(await victim.getTicket()),
      });
      expect(r.status, JSON.stringify(name)).toBe(400);
    }
    expect(await lookup(victim.id)).toEqual({ status: 200, body: {} });
  });
});
