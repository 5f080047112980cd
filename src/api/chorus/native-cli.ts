import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../../config/load-config.js';
import type { Config } from '../../config/schema.js';
import { ApiKeys, createAccessToken, grantsSchema, identity, roomName, type Grants } from './access-token.js';

const TOKEN_USAGE = `usage: chorus token create --room R --identity I [--grants LIST] [--ttl 6h]
                           [--name N] [--metadata M] [--key KEY] [--config FILE] [--env-file FILE]

Prints an access token (a JWT) for the native API and nothing else:
  TOKEN=$(npx chorus token create --room demo --identity alice)

  --room R        the room the token is for (required with join, publish, subscribe, data)
  --identity I    the participant's identity (required with join)
  --grants LIST   comma list (default: join,publish,subscribe):
                  join publish subscribe data admin create list (or their claim names:
                  roomJoin canPublish canSubscribe canPublishData roomAdmin roomCreate roomList);
                  admin without --room covers every room
  --sources LIST  sources publish covers: camera,microphone,screen (default: all)
  --ttl T         lifetime: 90s, 30m, 6h, 7d or seconds (default 6h)
  --name N        display name;  --metadata M  application data (a string)
  --key KEY       which of CHORUS_API_KEYS signs it (default: the first)
Settings come from the same places as the server's: environment, .env, --config.`;

const ROOMS_USAGE = `usage: chorus rooms list [--url URL] [--json]
       chorus rooms close NAME [--url URL]

Asks a running Chorus's room service (/chorus/v1/rooms) with a short-lived token signed
by the first of CHORUS_API_KEYS (environment, .env or --config, as the server reads them).

  list            the rooms, one a line: name, created (UTC), participants limit, metadata
  close NAME      deletes the room; everyone in it, on every node, is disconnected
  --url URL       the server (default: CHORUS_URL, else http://127.0.0.1:<HTTP_PORT>)
  --json          print the service's JSON answer instead of a table`;

const SHORT: Record<string, keyof Grants> = {
  join: 'roomJoin',
  publish: 'canPublish',
  subscribe: 'canSubscribe',
  data: 'canPublishData',
  admin: 'roomAdmin',
  create: 'roomCreate',
  list: 'roomList',
};
const ROOM_GRANTS: readonly string[] = ['roomJoin', 'canPublish', 'canSubscribe', 'canPublishData'];

/** A CLI mistake: the message goes to stderr with the usage, exit 2. */
export class UsageError extends Error {}

/** `chorus token ...` and `chorus rooms ...`: the exit code. */
export async function nativeCli(command: 'token' | 'rooms', argv: string[]): Promise<number> {
  try {
    return command === 'token' ? await tokenCommand(argv) : await roomsCommand(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(
        `chorus ${command}: ${err.message}\n${command === 'token' ? TOKEN_USAGE : ROOMS_USAGE}\n`,
      );
      return 2;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`chorus: invalid configuration\n${err.lines.map((l) => `  ${l}`).join('\n')}\n`);
      return 2;
    }
    process.stderr.write(`chorus ${command}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

export type Options = Record<string, { type: 'string' | 'boolean'; short?: string }>;

export function parse(
  argv: string[],
  options: Options,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        ...options,
        help: { type: 'boolean', short: 'h' },
        config: { type: 'string' },
        'env-file': { type: 'string' },
      },
    });
    return { values: values, positionals };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function config(values: Record<string, unknown>): Config {
  const file = values.config;
  const envFile = values['env-file'];
  return loadConfig({
    env: process.env,
    dotenvPath: typeof envFile === 'string' ? envFile : '.env',
    ...(typeof file === 'string' ? { configFile: file } : {}),
  });
}

/** The key:secret pair that signs: `key` when named, else the first configured. */
export function signer(cfg: Config, key: string | undefined): { key: string; secret: string } {
  const keys = new ApiKeys(cfg.chorus.apiKeys);
  if (!keys.first) throw new Error('no API keys configured: set CHORUS_API_KEYS=key:secret');
  if (key === undefined) return keys.first;
  const pair = cfg.chorus.apiKeys.find((p) => p.startsWith(`${key}:`));
  if (!pair) throw new UsageError(`no API key ${key} in CHORUS_API_KEYS`);
  return { key, secret: pair.slice(key.length + 1) };
}

/** `90s`, `30m`, `6h`, `7d` or plain seconds. */
export function parseTtl(text: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(text.trim());
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[m?.[2] ?? ''];
  const seconds = m && unit ? Number(m[1]) * unit : NaN;
  if (!Number.isSafeInteger(seconds) || seconds < 1)
    throw new UsageError(`--ttl ${text}: expected e.g. 90s, 30m, 6h, 7d`);
  return seconds;
}

async function tokenCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    room: { type: 'string' },
    identity: { type: 'string' },
    grants: { type: 'string' },
    sources: { type: 'string' },
    ttl: { type: 'string' },
    name: { type: 'string' },
    metadata: { type: 'string' },
    key: { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(TOKEN_USAGE + '\n');
    return 0;
  }
  if (positionals[0] !== 'create' || positionals.length > 1) throw new UsageError('expected: token create');
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const room = str(values.room);
  const who = str(values.identity);
  const grants: Record<string, unknown> = {};
  for (const g of (str(values.grants) ?? 'join,publish,subscribe').split(',').map((s) => s.trim())) {
    if (g === '') continue;
    const name =
      SHORT[g] ?? (g in SHORT || !(g in grantsSchema.shape) || g === 'canPublishSources' ? undefined : g);
    if (!name) throw new UsageError(`unknown grant ${g}`);
    grants[name] = true;
  }
  const sources = str(values.sources);
  if (sources !== undefined) grants.canPublishSources = sources.split(',').map((s) => s.trim());
  const parsed = grantsSchema.safeParse(grants);
  if (!parsed.success) throw new UsageError(`--sources: expected camera, microphone, screen`);
  if (!room && Object.keys(parsed.data).some((g) => ROOM_GRANTS.includes(g)))
    throw new UsageError('--room is required with join, publish, subscribe or data');
  if (!who && parsed.data.roomJoin) throw new UsageError('--identity is required with join');
  const { key, secret } = signer(config(values), str(values.key));
  const name = str(values.name);
  const metadata = str(values.metadata);
  if (room !== undefined && !roomName.safeParse(room).success)
    throw new UsageError(`--room ${room}: expected 1-128 characters: letters, digits, _ . ~ -`);
  if (who !== undefined && !identity.safeParse(who).success)
    throw new UsageError('--identity: expected 1-256 characters, no control characters');
  const token = await createAccessToken(key, secret, {
    grants: parsed.data,
    ttlSeconds: parseTtl(str(values.ttl) ?? '6h'),
    ...(room === undefined ? {} : { room }),
    ...(who === undefined ? {} : { identity: who }),
    ...(name === undefined ? {} : { name }),
    ...(metadata === undefined ? {} : { metadata }),
  });
  process.stdout.write(token + '\n');
  return 0;
}

async function roomsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { url: { type: 'string' }, json: { type: 'boolean' } });
  if (values.help) {
    process.stdout.write(ROOMS_USAGE + '\n');
    return 0;
  }
  const [action, name, ...rest] = positionals;
  if (rest.length > 0 || !(action === 'list' ? name === undefined : action === 'close' && name !== undefined))
    throw new UsageError('expected: rooms list, or rooms close NAME');
  const cfg = config(values);
  const { key, secret } = signer(cfg, undefined);
  const base =
    (typeof values.url === 'string' ? values.url : undefined) ??
    process.env.CHORUS_URL ??
    `http://127.0.0.1:${cfg.http.port}`;
  const token = await createAccessToken(key, secret, {
    identity: 'chorus-cli',
    grants: action === 'list' ? { roomList: true } : { roomAdmin: true },
    ttlSeconds: 60,
  });
  const url = new URL(
    action === 'list' ? 'chorus/v1/rooms' : `chorus/v1/rooms/${encodeURIComponent(name!)}`,
    base.endsWith('/') ? base : base + '/',
  );
  const res = await fetch(url, {
    method: action === 'list' ? 'GET' : 'DELETE',
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  if (!res.ok) {
    let message = text;
    try {
      message = (JSON.parse(text) as { error: { message: string } }).error.message;
    } catch {
      // not the native error body: the text as is
    }
    throw new Error(`${res.status} from ${url.origin}: ${message.slice(0, 300)}`);
  }
  if (action === 'close') {
    process.stdout.write(`closed ${name}\n`);
    return 0;
  }
  if (values.json) {
    process.stdout.write(text + '\n');
    return 0;
  }
  const { rooms } = JSON.parse(text) as {
    rooms: { name: string; createdAt: number; maxParticipants: number; metadata: string }[];
  };
  const rows = [['NAME', 'CREATED', 'MAX', 'METADATA']];
  for (const r of rooms)
    rows.push([
      r.name,
      new Date(r.createdAt * 1000).toISOString().slice(0, 19) + 'Z',
      String(r.maxParticipants || '-'),
      r.metadata,
    ]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows)
    process.stdout.write(
      row
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd() + '\n',
    );
  return 0;
}
