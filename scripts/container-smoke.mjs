// One Signal round against a running Chorus (the container of .ci/container-check):
// register two names, connect both to /v1/connect with their session cookies, and see a
// message from one arrive at the other. Exits 0 when it did, 1 (with why) otherwise.
// Usage: node scripts/container-smoke.mjs http://127.0.0.1:8000
/* global fetch, setTimeout, clearTimeout */
import WebSocket from 'ws';

const say = (line) => process.stdout.write(`${line}\n`);
const fail = (line) => process.stderr.write(`${line}\n`);

const base = process.argv[2];
if (!base) {
  fail('usage: node scripts/container-smoke.mjs URL');
  process.exit(2);
}
const DEADLINE_MS = 30_000;
const suffix = Math.random().toString(36).slice(2, 8);

async function register(name) {
  const res = await fetch(`${base}/v1/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: name }),
  });
  const body = await res.json();
  if (res.status !== 200 || body.status !== 'SUCCESS') {
    throw new Error(`register ${name}: ${res.status} ${JSON.stringify(body)}`);
  }
  const cookies = res.headers.getSetCookie().map((c) => c.split(';')[0]);
  if (!cookies.some((c) => c.startsWith('chorus_session=')))
    throw new Error(`register ${name}: no session cookie`);
  return cookies.join('; ');
}

function connect(cookie) {
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/connect`, { headers: { cookie } });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`connect: HTTP ${res.statusCode}`)));
  });
}

const alice = `alice_${suffix}`;
const bob = `bob_${suffix}`;
const aliceWs = await connect(await register(alice));
const bobWs = await connect(await register(bob));
const payload = { sdp: `hello ${suffix}` };

const received = new Promise((resolve, reject) => {
  const timer = setTimeout(
    () => reject(new Error(`no message reached ${bob} within ${DEADLINE_MS / 1000} s`)),
    DEADLINE_MS,
  );
  bobWs.on('message', (data) => {
    const msg = JSON.parse(String(data));
    if (msg.originator === alice && msg.type === 'video-offer') {
      clearTimeout(timer);
      resolve(msg);
    }
  });
});
// Bob's connection is announced as it opens; until then the server may answer
// TARGET_NOT_FOUND, so Alice sends again on that answer (and only then).
aliceWs.on('message', (data) => {
  const msg = JSON.parse(String(data));
  if (msg.type === 'TARGET_NOT_FOUND') setTimeout(send, 200);
  else fail(`unexpected frame to ${alice}: ${String(data)}`);
});
function send() {
  aliceWs.send(JSON.stringify({ target: bob, type: 'video-offer', payload }));
}
send();

try {
  const msg = await received;
  if (JSON.stringify(msg.payload) !== JSON.stringify(payload))
    throw new Error(`payload changed: ${JSON.stringify(msg)}`);
  say(`Signal: ${alice} -> ${bob} delivered through ${base}`);
  aliceWs.close();
  bobWs.close();
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
  process.exit(1);
}
