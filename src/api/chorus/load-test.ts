import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import { ConfigError } from '../../config/load-config.js';
import { createAccessToken, roomName } from './access-token.js';
import { formatLoadTest, type LoadTestResult, type SubscriberResult } from './load-test-table.js';
import { config, parse, signer, UsageError } from './native-cli.js';
import { WhepViewer, WhipPublisher } from './whip-client.js';

const USAGE = `usage: chorus load-test [--url URL] [--room R] [--publishers N] [--subscribers M] [--seconds S]
                        [--video-kbps K] [--token LIST] [--key KEY] [--json] [--config FILE]

Runs N WHIP publishers and M WHEP subscribers (node-datachannel, in this process) against a
running Chorus for S seconds, then prints join time, packet loss, jitter and received bitrate
as a table (min, p50, p99, max over the participants). Publishers send fake VP8 at
--video-kbps and Opus at 50 packets/s (RTP the SFU forwards, not decodable media);
subscriber j views publisher j mod N. The run stops by itself.

  --url URL        the server (default: CHORUS_URL, else http://127.0.0.1:<HTTP_PORT>)
  --room R         the room (default load-test); created when missing and deleted afterwards
  --publishers N   default 1        --subscribers M   default 2
  --seconds S      how long media runs once everyone joined (default 10)
  --video-kbps K   each publisher's video bitrate (default 800)
  --token LIST     comma list of N+M access tokens, each its own identity (the first N
                   publish, the rest subscribe), instead of tokens signed with CHORUS_API_KEYS;
                   the room must exist then
  --key KEY        which of CHORUS_API_KEYS signs (default: the first)
  --json           the measures as JSON instead of the table
Settings come from the same places as the server's: environment, .env, --config.
Exit 0 when every participant joined, 1 otherwise.`;

/** A run that has not finished this long after its media time is stuck: it exits 1. */
const GRACE_SECONDS = 120;

/** `chorus load-test ...`: the exit code. */
export async function loadTestCli(argv: string[]): Promise<number> {
  try {
    return await loadTest(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`chorus load-test: ${err.message}\n${USAGE}\n`);
      return 2;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`chorus: invalid configuration\n${err.lines.map((l) => `  ${l}`).join('\n')}\n`);
      return 2;
    }
    process.stderr.write(`chorus load-test: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

function count(
  v: string | boolean | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${name} ${String(v)}: expected a whole number from ${min} to ${max}`);
  return n;
}

interface Participants {
  /** Tokens of the publishers, then of the subscribers. */
  publishers: string[];
  subscribers: string[];
  /** The identity each publisher publishes as (what subscribers name in the WHEP path). */
  publisherIds: string[];
  /** A token that may create and delete the room; absent with --token. */
  admin?: string;
}

async function participants(
  values: Record<string, string | boolean | undefined>,
  room: string,
  n: number,
  m: number,
  ttlSeconds: number,
): Promise<Participants> {
  if (typeof values.token === 'string') {
    const tokens = values.token.split(',').map((t) => t.trim());
    if (tokens.length !== n + m)
      throw new UsageError(
        `--token: expected ${n + m} tokens (publishers + subscribers), got ${tokens.length}`,
      );
    const publishers = tokens.slice(0, n);
    return {
      publishers,
      subscribers: tokens.slice(n),
      publisherIds: publishers.map((t, i) => {
        const sub = decodeJwt(t).sub;
        if (!sub) throw new UsageError(`--token: publisher token ${i + 1} names no identity (sub)`);
        return sub;
      }),
    };
  }
  const { key, secret } = signer(config(values), typeof values.key === 'string' ? values.key : undefined);
  const make = (identity: string, grants: object): Promise<string> =>
    createAccessToken(key, secret, { identity, room, grants, ttlSeconds });
  const publisherIds = Array.from({ length: n }, (_, i) => `load-pub-${i}`);
  return {
    publishers: await Promise.all(publisherIds.map((id) => make(id, { roomJoin: true, canPublish: true }))),
    subscribers: await Promise.all(
      Array.from({ length: m }, (_, j) => make(`load-sub-${j}`, { roomJoin: true, canSubscribe: true })),
    ),
    publisherIds,
    admin: await createAccessToken(key, secret, {
      identity: 'chorus-load-test',
      grants: { roomCreate: true, roomAdmin: true },
      ttlSeconds,
    }),
  };
}

/** Creates the room; true when this run made it (false: it existed). */
async function ensureRoom(api: string, room: string, admin: string): Promise<boolean> {
  const res = await fetch(`${api}/rooms`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: room, metadata: 'chorus load-test' }),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  if (res.status === 201) return true;
  if (res.status === 409) return false;
  throw new Error(`creating room ${room}: ${res.status} ${text.slice(0, 300)}`);
}

const why = (err: unknown): string => (err instanceof Error ? err.message : String(err));

function measure(v: WhepViewer): SubscriberResult {
  const expected = v.video.expected + v.audio.expected;
  const lost = v.video.lost + v.audio.lost;
  const first = Math.min(v.video.firstAt || Infinity, v.audio.firstAt || Infinity);
  const last = Math.max(v.video.lastAt, v.audio.lastAt);
  const ms = Number.isFinite(first) ? last - first : 0;
  return {
    joinMs: v.joinMs,
    lossPercent: expected > 0 ? (lost / expected) * 100 : 100,
    jitterMs: v.video.jitterMs,
    kbps: ms > 0 ? ((v.video.bytes + v.audio.bytes) * 8) / ms : 0,
    packets: v.packets,
  };
}

async function loadTest(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    url: { type: 'string' },
    room: { type: 'string' },
    publishers: { type: 'string' },
    subscribers: { type: 'string' },
    seconds: { type: 'string' },
    'video-kbps': { type: 'string' },
    token: { type: 'string' },
    key: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected ${positionals[0]}`);
  const n = count(values.publishers, 'publishers', 1, 1, 500);
  const m = count(values.subscribers, 'subscribers', 2, 0, 5000);
  const seconds = count(values.seconds, 'seconds', 10, 1, 3600);
  const videoKbps = count(values['video-kbps'], 'video-kbps', 800, 0, 50_000);
  const room = typeof values.room === 'string' ? values.room : 'load-test';
  if (!roomName.safeParse(room).success)
    throw new UsageError(`--room ${room}: expected 1-128 characters: letters, digits, _ . ~ -`);
  const base =
    (typeof values.url === 'string' ? values.url : undefined) ??
    process.env.CHORUS_URL ??
    `http://127.0.0.1:${config(values).http.port}`;
  const api = `${base.replace(/\/$/, '')}/chorus/v1`;
  const who = await participants(values, room, n, m, seconds + GRACE_SECONDS + 300);

  // Bounded: whatever hangs (a server that stops answering), the run ends.
  const stuck = setTimeout(
    () => {
      process.stderr.write(
        `chorus load-test: not finished ${GRACE_SECONDS} s after its media time; giving up\n`,
      );
      process.exit(1);
    },
    (seconds + GRACE_SECONDS) * 1000,
  );
  const created = who.admin ? await ensureRoom(api, room, who.admin) : false;
  const pubs: Array<WhipPublisher | undefined> = [];
  const viewers: Array<{ viewer: WhepViewer; token: string }> = [];
  const result: LoadTestResult = {
    url: base,
    room,
    seconds,
    videoKbps,
    publishers: { wanted: n, joinMs: [], failures: [], packetsSent: 0 },
    subscribers: { wanted: m, results: [], failures: [] },
  };
  try {
    await Promise.all(
      who.publishers.map(async (token, i) => {
        const pub = new WhipPublisher(who.publisherIds[i]);
        try {
          await pub.publish(`${api}/whip/${encodeURIComponent(room)}`, token);
          pub.start(videoKbps);
          pubs[i] = pub;
          result.publishers.joinMs.push(pub.joinMs);
        } catch (err) {
          pub.close();
          result.publishers.failures.push(`publisher ${who.publisherIds[i]}: ${why(err)}`);
        }
      }),
    );
    await Promise.all(
      who.subscribers.map(async (token, j) => {
        const of = j % n;
        if (!pubs[of]) {
          result.subscribers.failures.push(
            `subscriber ${j}: its publisher ${who.publisherIds[of]} did not join`,
          );
          return;
        }
        const viewer = new WhepViewer(`load-sub-${j}`);
        try {
          await viewer.view(
            `${api}/whep/${encodeURIComponent(room)}/${encodeURIComponent(who.publisherIds[of]!)}`,
            token,
          );
          viewers.push({ viewer, token });
        } catch (err) {
          viewer.close();
          result.subscribers.failures.push(`subscriber ${j}: ${why(err)}`);
        }
      }),
    );
    await sleep(seconds * 1000);
    for (const p of pubs) p?.stop();
    result.publishers.packetsSent = pubs.reduce((s, p) => s + (p?.sent ?? 0), 0);
    result.subscribers.results = viewers.map((v) => measure(v.viewer));
  } finally {
    // Sessions end on the server (DELETE), then here; the room goes if this run made it.
    // Viewers first: a publisher's end would end their sessions under them.
    await Promise.allSettled(viewers.map((v) => v.viewer.delete(v.token)));
    await Promise.allSettled(pubs.map(async (p, i) => p?.delete(who.publishers[i]!)));
    for (const c of [...pubs, ...viewers.map((v) => v.viewer)]) c?.close();
    if (created && who.admin)
      await fetch(`${api}/rooms/${encodeURIComponent(room)}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${who.admin}` },
        signal: AbortSignal.timeout(15_000),
      }).catch(() => undefined);
    clearTimeout(stuck);
  }
  process.stdout.write(values.json ? JSON.stringify(result) + '\n' : formatLoadTest(result));
  return result.publishers.failures.length + result.subscribers.failures.length > 0 ? 1 : 0;
}
