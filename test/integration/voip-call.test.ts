import { createSign, generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dominantFrequency, powerAt, samplesOf, ToneSource } from '../fixtures/audio.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { KeyUser, listenFor, listenUntil, SseClient, talk, unhex } from '../fixtures/voip-client.js';
import { eventually, within } from '../fixtures/ws-client.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ voip: { oggBacklogMs: 0 } });
});
afterAll(() => t.close());

/** Caller and callee through the whole standalone handshake; the call is accepted. */
async function handshake(c: KeyUser, e: KeyUser, cEvents: SseClient, eEvents: SseClient) {
  await c.getTicket();
  await e.getTicket();
  const c1 = '31415926';
  const res = await c.post('/newCall', { Destination: e.id, challenge: c1, signature: c.sign(c.ticket) });
  expect(res.status).toBe(200);
  expect(res.text).toMatch(/^[a-zA-Z]{8}$/); // the caller's next server challenge
  c.ticket = res.text;
  const newCall = unhex((await eEvents.next('newCall')).data);
  expect(newCall).toEqual({ challenge: c1, from: c.id });

  const c2 = 'fromTheCallee';
  expect((await e.post('/answer', { Destination: c.id, challenge: c2, signature: e.sign(c1) })).status).toBe(
    200,
  );
  const answer = unhex((await cEvents.next('answer')).data);
  expect(answer.from).toBe(e.id);
  expect(answer.challenge).toBe(c2);
  expect(KeyUser.verify(e.id, c1, answer.answer as string)).toBe(true);

  const c3 = 'third-one';
  expect((await c.post('/answer2', { Destination: e.id, challenge: c3, signature: c.sign(c2) })).status).toBe(
    200,
  );
  const answer2 = unhex((await eEvents.next('answer2')).data);
  expect(KeyUser.verify(c.id, c2, answer2.answer as string)).toBe(true);
  expect(answer2.challenge).toBe(c3);

  expect((await e.post('/acceptCall', { From: c.id, signature: e.sign(c3) })).status).toBe(200);
  const accepted = unhex((await cEvents.next('acceptedCall')).data);
  expect(accepted).toEqual({ answer: accepted.answer, challenge: '', from: e.id });
  expect(KeyUser.verify(e.id, c3, accepted.answer as string)).toBe(true);
  return { c1, c2, c3 };
}

describe('VOIP standalone: events and handshake', () => {
  it('opens the event stream with the server key, as the original writes it', async () => {
    const u = new KeyUser(t.url);
    const res = await fetch(`${t.url}/messages?PKey=${u.id}`);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toMatch(/^event: pubkey\ndata:04[0-9a-f]{128}\n\n$/);
    await reader.cancel();
  });

  it('completes a call between two clients written to the original wire format', async () => {
    const c = new KeyUser(t.url);
    const e = new KeyUser(t.url);
    const [cEvents, eEvents] = await Promise.all([c.events(), e.events()]);
    await handshake(c, e, cEvents, eEvents);

    // Media, as the original client does it: uploads over WebSocket, listening by POST
    // with a multipart form. Each party hears the other, never itself.
    const cUp = await c.uploadSocket('/upCall', { otherID: e.id });
    const eUp = await e.uploadSocket('/upCall', { otherID: c.id });
    const conf = unhex((await eEvents.next('setAudioConf')).data);
    expect(conf).toEqual({ answer: '', challenge: '', from: c.id, in: '1', out: '0' });

    const listen = async (u: KeyUser, other: KeyUser) => {
      const ticket = await u.getTicket();
      const fd = new FormData();
      fd.set('otherID', other.id);
      fd.set('Signature', u.sign(ticket));
      fd.set('format', 'wav');
      return listenFor(`${t.url}/joinCall`, { method: 'POST', headers: { PKey: u.id }, body: fd }, 1500);
    };
    const toneC = new ToneSource(440);
    const toneE = new ToneSource(1000);
    const [heardByC, heardByE] = await Promise.all([
      listen(c, e),
      listen(e, c),
      talk(cUp, (ms) => toneC.next(ms), 1800),
      talk(eUp, (ms) => toneE.next(ms), 1800),
    ]);
    for (const h of [heardByC, heardByE]) {
      expect(h.status).toBe(200);
      expect(h.type).toBe('audio/wav');
      expect(h.body.subarray(0, 4).toString()).toBe('RIFF');
    }
    const c_ = samplesOf(heardByC.body.subarray(44 + 48_000)); // skip the first 0.5 s
    const e_ = samplesOf(heardByE.body.subarray(44 + 48_000));
    expect(dominantFrequency(c_)).toBe(1000);
    expect(powerAt(c_, 1000)).toBeGreaterThan(100 * powerAt(c_, 440));
    expect(dominantFrequency(e_)).toBe(440);
    expect(powerAt(e_, 440)).toBeGreaterThan(100 * powerAt(e_, 1000));
    cUp.close();
    eUp.close();
    cEvents.close();
    eEvents.close();
  });

  it('delivers to every tab of a user and replays missed events after Last-Event-ID to the proven owner', async () => {
    const c = new KeyUser(t.url);
    const e = new KeyUser(t.url);
    const [tab1, tab2] = await Promise.all([e.events(), e.events()]);
    await c.getTicket();
    c.ticket = (
      await c.post('/newCall', { Destination: e.id, challenge: 'first', signature: c.sign(c.ticket) })
    ).text;
    const seen = await tab1.next('newCall');
    expect((await tab2.next('newCall')).id).toBe(seen.id);
    tab1.close();
    tab2.close();
    // While e is away, a second call rings; reconnecting with the last id and a signature
    // over e's current ticket (proof of the key) gets it.
    await c.post('/newCall', { Destination: e.id, challenge: 'second', signature: c.sign(c.ticket) });
    const ticket = await e.getTicket();
    const back = await SseClient.open(`${t.url}/messages?PKey=${e.id}&Signature=${e.sign(ticket)}`, {
      'Last-Event-ID': seen.id!,
    });
    const missed = await back.next('newCall');
    expect(unhex(missed.data).challenge).toBe('second');
    expect(back.events.filter((ev) => ev.event === 'newCall')).toHaveLength(0);
    back.close();
  });

  it('gives a stranger who knows a key live events only: no replay without proof of the key', async () => {
    const c = new KeyUser(t.url);
    const e = new KeyUser(t.url);
    await c.getTicket();
    c.ticket = (
      await c.post('/newCall', { Destination: e.id, challenge: 'while-away', signature: c.sign(c.ticket) })
    ).text;
    // e is offline; a stranger opens e's stream asking for everything since id 0, once
    // without a signature and once with a signature that is not e's.
    const stranger = new KeyUser(t.url);
    await e.getTicket();
    const [bare, forged] = await Promise.all([
      SseClient.open(`${t.url}/messages?PKey=${e.id}`, { 'Last-Event-ID': '0' }),
      SseClient.open(`${t.url}/messages?PKey=${e.id}&Signature=${stranger.sign(e.ticket)}`, {
        'Last-Event-ID': '0',
      }),
    ]);
    expect([bare.status, forged.status]).toEqual([200, 200]);
    await bare.next('pubkey');
    await forged.next('pubkey');
    // A live event still reaches both (as in the original), and it is the first newCall
    // they see: the one rung while e was away was not replayed.
    await c.post('/newCall', { Destination: e.id, challenge: 'live-one', signature: c.sign(c.ticket) });
    for (const s of [bare, forged]) {
      expect(unhex((await s.next('newCall')).data).challenge).toBe('live-one');
      expect(s.events.filter((ev) => ev.event === 'newCall')).toHaveLength(0);
      s.close();
    }
  });

  it('accepts WebCrypto-style signatures (SHA-256, r||s)', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const jwk = publicKey.export({ format: 'jwk' });
    const y = Buffer.from(jwk.y!, 'base64url');
    const id = Buffer.concat([Buffer.from([2 + (y[31]! & 1)]), Buffer.from(jwk.x!, 'base64url')]).toString(
      'hex',
    );
    const e = new KeyUser(t.url);
    const ticket = await (await fetch(`${t.url}/getCallTicket`, { headers: { PKey: id } })).text();
    const signer = createSign('sha256');
    signer.update(ticket);
    const signature = signer.sign({ key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('hex');
    const res = await fetch(`${t.url}/newCall`, {
      method: 'POST',
      headers: { PKey: id, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ Destination: e.id, challenge: 'abc', signature }),
    });
    expect(res.status).toBe(200);
  });

  it('refuses replayed and forged signatures, and challenges of another pair', async () => {
    const c = new KeyUser(t.url);
    const e = new KeyUser(t.url);
    const mallory = new KeyUser(t.url);
    const [cEvents, eEvents] = await Promise.all([c.events(), e.events()]);
    await c.getTicket();
    const first = c.sign(c.ticket);
    expect((await c.post('/newCall', { Destination: e.id, challenge: 'c1', signature: first })).status).toBe(
      200,
    );
    // The ticket was spent: the same signature again is a replay.
    const replay = await c.post('/newCall', { Destination: e.id, challenge: 'c1', signature: first });
    expect(replay).toEqual({ status: 403, text: 'bad signature\n' });
    // Mallory signs with her key but claims to be c.
    await c.getTicket();
    const forged = await fetch(`${t.url}/newCall`, {
      method: 'POST',
      headers: { PKey: c.id, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ Destination: e.id, challenge: 'c1', signature: mallory.sign(c.ticket) }),
    });
    expect(forged.status).toBe(403);

    await eEvents.next('newCall');
    // A wrong answer is refused but does not burn the challenge; the right one works once.
    expect(
      await e.post('/answer', { Destination: c.id, challenge: 'c2', signature: e.sign('not-c1') }),
    ).toEqual({
      status: 403,
      text: 'bad answer signature\n',
    });
    expect(
      (await e.post('/answer', { Destination: c.id, challenge: 'c2', signature: e.sign('c1') })).status,
    ).toBe(200);
    expect(
      (await e.post('/answer', { Destination: c.id, challenge: 'c2', signature: e.sign('c1') })).status,
    ).toBe(403);
    // c1 was addressed to e by c: it cannot serve e in an exchange with mallory.
    expect(
      (await e.post('/answer', { Destination: mallory.id, challenge: 'x', signature: e.sign('c1') })).status,
    ).toBe(404);
    // Accepting needs c3: the old c1 signature does not do.
    expect((await e.post('/acceptCall', { From: c.id, signature: e.sign('c1') })).status).toBe(403);
    cEvents.close();
    eEvents.close();
  });

  it('rejects a call: the caller is told and media is refused', async () => {
    const c = new KeyUser(t.url);
    const e = new KeyUser(t.url);
    const [cEvents, eEvents] = await Promise.all([c.events(), e.events()]);
    await c.getTicket();
    await c.post('/newCall', { Destination: e.id, challenge: 'c1', signature: c.sign(c.ticket) });
    await e.post('/answer', { Destination: c.id, challenge: 'c2', signature: e.sign('c1') });
    await c.post('/answer2', { Destination: e.id, challenge: 'c3', signature: c.sign('c2') });
    expect((await e.post('/rejectCall', { From: c.id, signature: e.sign('c3') })).status).toBe(200);
    const declined = unhex((await cEvents.next('declineCall')).data);
    expect(Object.keys(declined)).toEqual(['answer', 'from']);
    expect(declined.from).toBe(e.id);
    const up = await fetch(`${t.url}/upCall?${await c.mediaQuery({ otherID: e.id })}`, {
      method: 'POST',
      body: '',
    });
    expect(up.status).toBe(404);
    expect(await up.text()).toBe('call not found\n');
    cEvents.close();
    eEvents.close();
  });

  it('answers bad input with clear errors and keeps serving', async () => {
    const u = new KeyUser(t.url);
    const post = (path: string, body: string, headers: Record<string, string> = {}) =>
      fetch(`${t.url}${path}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
        body,
      }).then(async (r) => ({ status: r.status, text: await r.text() }));
    expect(await post('/newCall', 'Destination=x')).toEqual({ status: 403, text: 'bad PKey\n' });
    expect(await post('/newCall', 'x', { PKey: '02' + 'zz'.repeat(32) })).toEqual({
      status: 403,
      text: 'bad PKey\n',
    });
    await u.getTicket();
    expect(
      await u.post('/newCall', { Destination: 'nobody', challenge: 'a', signature: u.sign(u.ticket) }),
    ).toEqual({
      status: 400,
      text: 'bad Destination\n',
    });
    expect((await post('/newCall', '%%%', { PKey: u.id })).status).toBe(403);
    expect((await u.post('/acceptCall', { From: new KeyUser(t.url).id, signature: '00' })).status).toBe(404);
    expect(
      (await fetch(`${t.url}/joinCall?${await u.mediaQuery({ otherID: u.id, format: 'mp3' })}`)).status,
    ).toBe(400);
    const big = await post('/newCall', 'a='.padEnd(100_000, 'x'), { PKey: u.id });
    expect(big.status).toBe(413);
    expect((await fetch(`${t.url}/newCall`, { method: 'OPTIONS' })).status).toBe(200);
    expect((await fetch(`${t.url}/listRoom`)).status).toBe(200);
  });

  it('answers any origin, the CORS preflight and stray methods as the original does', async () => {
    const preflight = await t.server.app.inject({ method: 'OPTIONS', url: '/newCall' });
    expect([preflight.statusCode, preflight.body]).toEqual([200, '']);
    expect(preflight.headers).toMatchObject({
      'access-control-allow-origin': '*',
      'access-control-allow-headers': 'PKey,CSRFToken,Last-Event-ID,Content-Type',
    });
    expect(preflight.headers['access-control-allow-credentials']).toBeUndefined();
    const refused = await t.server.app.inject({ method: 'GET', url: '/tokenCheck' });
    expect([refused.statusCode, refused.body]).toEqual([403, 'bad PKey\n']);
    expect(refused.headers['access-control-allow-origin']).toBe('*');
    for (const [method, url] of [
      ['PUT', '/messages'],
      ['GET', '/newCall'],
      ['DELETE', '/upRoom'],
      ['PATCH', '/joinCall'],
    ] as const) {
      const res = await t.server.app.inject({ method, url });
      expect([method, url, res.statusCode, res.body]).toEqual([method, url, 200, '']);
    }
    const plain = await t.server.app.inject({ method: 'GET', url: '/upCall' });
    expect([plain.statusCode, plain.body]).toEqual([426, 'WebSocket or POST expected\n']);
  });
});

describe('VOIP standalone: streams', () => {
  let c: KeyUser;
  let e: KeyUser;
  let cEvents: SseClient;
  let eEvents: SseClient;
  beforeAll(async () => {
    c = new KeyUser(t.url);
    e = new KeyUser(t.url);
    [cEvents, eEvents] = await Promise.all([c.events(), e.events()]);
    await handshake(c, e, cEvents, eEvents);
  });
  afterAll(() => {
    cEvents.close();
    eEvents.close();
  });

  it('allows one listener per party, frees the slot when the client goes, and refuses outsiders', async () => {
    const q = await e.mediaQuery({ otherID: c.id, format: 'wav' });
    const abort = new AbortController();
    const first = await fetch(`${t.url}/joinCall?${q}`, { signal: abort.signal });
    expect(first.status).toBe(200);
    expect(unhex((await cEvents.next('setAudioConf')).data)).toMatchObject({ from: e.id, in: '0', out: '1' });
    const second = await fetch(`${t.url}/joinCall?${await e.mediaQuery({ otherID: c.id })}`);
    expect(second.status).toBe(409);
    expect(await second.text()).toBe('user already connected\n');
    // A signature over a spent ticket is refused (the ticket served the first listener).
    expect((await fetch(`${t.url}/joinCall?${q}`)).status).toBe(403);
    abort.abort();
    expect(unhex((await cEvents.next('setAudioConf')).data)).toMatchObject({ from: e.id, in: '0', out: '0' });
    const again = await listenFor(`${t.url}/joinCall?${await e.mediaQuery({ otherID: c.id })}`, {}, 200);
    expect(again.status).toBe(200);
    expect(again.type).toBe('audio/ogg');
    // Someone outside the call.
    const outsider = new KeyUser(t.url);
    const res = await fetch(`${t.url}/joinCall?${await outsider.mediaQuery({ otherID: c.id })}`);
    expect(res.status).toBe(404);
  });

  it('serves the raw-Opus WebSocket path', async () => {
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(
      `${t.url.replace('http', 'ws')}/joinCall?${await c.mediaQuery({ otherID: e.id })}`,
    );
    const messages: (Buffer | string)[] = [];
    ws.on('message', (d: Buffer, binary: boolean) => messages.push(binary ? d : d.toString()));
    await eventually(() => messages.length >= 11, 10_000, 'opus packets');
    expect(JSON.parse(messages[0] as string)).toMatchObject({
      codec: 'opus',
      sampleRate: 48000,
      frameMs: 20,
    });
    expect(Buffer.isBuffer(messages[1])).toBe(true);
    ws.close();
    // The slot is free again once the server has seen the close.
    for (;;) {
      const conf = unhex((await eEvents.next('setAudioConf')).data);
      if (conf.from === c.id && conf.out === '0') break;
    }
  });

  it('ends the call on hangup: streams close and both are told', async () => {
    const q = await c.mediaQuery({ otherID: e.id, format: 'wav' });
    const listening = listenFor(`${t.url}/joinCall?${q}`, {}, 5000);
    for (;;) {
      const conf = unhex((await eEvents.next('setAudioConf')).data);
      if (conf.from === c.id && conf.out === '1') break;
    }
    expect((await e.post('/endCall', { Destination: c.id })).status).toBe(200);
    const heard = await listening;
    expect(heard.status).toBe(200);
    expect(unhex((await cEvents.next('endCall')).data).from).toBe(e.id);
    expect((await fetch(`${t.url}/joinCall?${await c.mediaQuery({ otherID: e.id })}`)).status).toBe(404);
  });
});

describe('VOIP shutdown', () => {
  it('ends event and audio streams so the server stops within its grace', async () => {
    // A grace far longer than the wait below: stopping in time shows the server ended the
    // streams itself rather than waiting out the grace (no elapsed-time measurement).
    const s = await startTestServer({ shutdown: { graceSeconds: 60 } });
    const c = new KeyUser(s.url);
    const e = new KeyUser(s.url);
    const [cEvents, eEvents] = await Promise.all([c.events(), e.events()]);
    await handshake(c, e, cEvents, eEvents);
    const listening = listenFor(`${s.url}/joinCall?${await c.mediaQuery({ otherID: e.id })}`, {}, 10_000);
    await eEvents.next('setAudioConf');
    await within(s.close(), 20_000, 'the server to stop');
    expect((await listening).status).toBe(200);
    cEvents.close();
    eEvents.close();
  });
});

describe('VOIP timers', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ voip: { ringTimeoutSeconds: 1, callIdleSeconds: 1, keepAliveSeconds: 1 } });
  });
  afterAll(() => s.close());

  it('sends keep-alive comments on idle event streams', async () => {
    const u = new KeyUser(s.url);
    const events = await u.events();
    await eventually(() => events.comments.length > 0, 10_000, 'a keep-alive comment');
    expect(events.comments[0]).toBe(': keep-alive');
    events.close();
  });

  it('ends a call nobody answers; both parties are told', async () => {
    const c = new KeyUser(s.url);
    const e = new KeyUser(s.url);
    const [cEvents, eEvents] = await Promise.all([c.events(), e.events()]);
    await c.getTicket();
    await c.post('/newCall', { Destination: e.id, challenge: 'c1', signature: c.sign(c.ticket) });
    expect(unhex((await cEvents.next('declineCall', 10_000)).data)).toEqual({ answer: '', from: e.id });
    expect(unhex((await eEvents.next('declineCall', 10_000)).data)).toEqual({ answer: '', from: c.id });
    // Too late to answer.
    expect(
      (await e.post('/answer', { Destination: c.id, challenge: 'c2', signature: e.sign('c1') })).status,
    ).toBe(404);
    cEvents.close();
    eEvents.close();
  });

  it('ends an accepted call in which nobody opens a stream', async () => {
    const c = new KeyUser(s.url);
    const e = new KeyUser(s.url);
    const [cEvents, eEvents] = await Promise.all([c.events(), e.events()]);
    await handshake(c, e, cEvents, eEvents);
    expect(unhex((await cEvents.next('endCall', 10_000)).data).from).toBe(e.id);
    expect((await fetch(`${s.url}/joinCall?${await c.mediaQuery({ otherID: e.id })}`)).status).toBe(404);
    cEvents.close();
    eEvents.close();
  });

  it('keeps a call with an open stream, whatever the format name', async () => {
    const c = new KeyUser(s.url);
    const e = new KeyUser(s.url);
    const [cEvents, eEvents] = await Promise.all([c.events(), e.events()]);
    await handshake(c, e, cEvents, eEvents);
    // The callee keeps listening throughout, so the call is never idle between the
    // caller's streams (this server ends idle calls after 1 s, and on a busy machine the
    // gap between two streams can be longer than that).
    let done = false;
    const held = listenUntil(
      `${s.url}/joinCall?${await e.mediaQuery({ otherID: c.id, format: 'wav' })}`,
      {},
      () => done,
      60_000,
    );
    for (const format of ['ogg', 'VORBIS', 'Opus']) {
      const heard = await listenFor(
        `${s.url}/joinCall?${await c.mediaQuery({ otherID: e.id, format })}`,
        {},
        700,
      );
      expect([heard.status, heard.type]).toEqual([200, 'audio/ogg']);
      expect(heard.body.subarray(0, 4).toString()).toBe('OggS');
    }
    done = true;
    expect((await held).status).toBe(200);
    cEvents.close();
    eEvents.close();
  });
});
