import { isIP } from 'node:net';
import { z } from 'zod';
import { IpMatcher } from '../lib/ip-matcher.js';

/**
 * Metadata every leaf of the config schema carries: the environment variable names that
 * set it (the seeds' names first, then Chorus's own) and one sentence for the README.
 */
export interface FieldMeta {
  env: readonly string[];
  doc: string;
  /** How the default reads in the docs when it is not a literal (e.g. "generated"). */
  defaultDoc?: string;
  /** Keys this setting had in earlier versions, still accepted in files and overrides. */
  formerKeys?: readonly string[];
}

const TRUE_WORDS = new Set(['yes', 'true', '1', 'on', 'y']);
const FALSE_WORDS = new Set(['no', 'false', '0', 'off', 'n', '']);

/** Booleans as the seeds write them (`YES`/`NO`) and as people do (`true`, `1`, `off`). */
export const flag = z.preprocess(
  (v) => {
    if (typeof v !== 'string') return v;
    const w = v.trim().toLowerCase();
    if (TRUE_WORDS.has(w)) return true;
    if (FALSE_WORDS.has(w)) return false;
    return v;
  },
  z.boolean({ error: 'expected YES/NO, true/false or 1/0' }),
);

/**
 * A three-way switch (`auto`, `yes`, `no`) that takes every form `flag` does, so
 * `LOG_PRETTY=YES` works as the README says booleans do. Empty means `auto`.
 */
export const autoFlag = z.preprocess(
  (v) => {
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    if (typeof v !== 'string') return v;
    const w = v.trim().toLowerCase();
    if (w === '' || w === 'auto') return 'auto';
    if (TRUE_WORDS.has(w)) return 'yes';
    if (FALSE_WORDS.has(w)) return 'no';
    return v;
  },
  z.enum(['auto', 'yes', 'no'], { error: 'expected auto, YES/NO, true/false or 1/0' }),
);

/** A literal IPv4 or IPv6 address (what a coordinator or an ICE candidate can use). */
export const ipAddress = z
  .string()
  .trim()
  .refine((v) => isIP(v) !== 0, { error: 'expected an IP address such as 203.0.113.7 or 2001:db8::7' });

/**
 * An address to bind a listener to: a literal IP (`0.0.0.0`, `::`, `127.0.0.1`) or
 * `localhost`; a typo is a config error rather than a failure when listening.
 */
export const bindAddress = z
  .string()
  .trim()
  .refine((v) => v === 'localhost' || isIP(v) !== 0, {
    error: 'expected an IP address to bind to, such as 0.0.0.0, ::, 127.0.0.1 (or localhost)',
  });

/** A UDP port range `first-last`, first no greater than last. */
export const portRange = z
  .string()
  .trim()
  .refine(
    (v) => {
      const m = /^(\d{1,5})-(\d{1,5})$/.exec(v);
      if (!m) return false;
      const [first, last] = [Number(m[1]), Number(m[2])];
      return first >= 1 && last <= 65535 && first <= last;
    },
    { error: 'expected a range first-last with 1 <= first <= last <= 65535, e.g. 50000-60000' },
  );

/** An integer from an environment string or a config file number. */
export function int(min: number, max: number) {
  return z.preprocess(
    (v) => (typeof v === 'string' && v.trim() !== '' ? Number(v.trim()) : v),
    z
      .number({ error: `expected an integer from ${min} to ${max}` })
      .int({ error: `expected an integer from ${min} to ${max}` })
      .min(min, { error: `expected an integer from ${min} to ${max}` })
      .max(max, { error: `expected an integer from ${min} to ${max}` }),
  );
}

/** A comma-separated list in the environment, an array in a config file; blanks dropped. */
export const list = z.preprocess(
  (v) =>
    typeof v === 'string'
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '')
      : v,
  z.array(z.string(), { error: 'expected a comma-separated list' }),
);

/** A list of IPs and CIDRs (v4/v6) or `*`; a bad entry is a config error, not a silent skip. */
export const ipList = list.superRefine((entries, ctx) => {
  try {
    new IpMatcher(entries);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

/** A comma-separated list where an empty item is meaningful (e.g. the root prefix). */
export function listKeepingEmpty<S extends z.ZodType>(item: S) {
  return z.preprocess(
    (v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()) : v),
    z.array(item, { error: 'expected a comma-separated list' }),
  );
}

/** A path prefix: '' or '/x', normalised without a trailing slash. */
export const pathPrefix = z
  .string()
  .transform((s) => s.trim().replace(/\/+$/, ''))
  .refine((s) => s === '' || /^\/[A-Za-z0-9._~\-/]*$/.test(s), {
    error: 'expected a path prefix such as /api (letters, digits, - . _ ~ /)',
  });

/** A leaf with a default. Defaults are given here so the docs can show them. */
export function field<S extends z.ZodType>(schema: S, defaultValue: z.output<S>, meta: FieldMeta) {
  return schema.default(defaultValue as never).meta({ ...meta });
}

/** A leaf that may be left unset. */
export function optionalField<S extends z.ZodType>(schema: S, meta: FieldMeta) {
  return schema.optional().meta({ ...meta });
}

/** NATS servers: a comma list (an array in a config file) of `nats://host:port` or `host:port`. */
export const natsServers = list
  .refine((servers) => servers.length > 0, {
    error: 'expected at least one NATS server, e.g. nats://127.0.0.1:4222',
  })
  .refine((servers) => servers.every((s) => !/\s/.test(s)), {
    error: 'a NATS server URL has no spaces, e.g. nats://127.0.0.1:4222',
  });

/** ICE server URLs (RFC 7064/7065): `stun:`, `stuns:`, `turn:` or `turns:`, no spaces. */
export const iceServerUrls = list.refine((urls) => urls.every((u) => /^(stuns?|turns?):[^\s,]+$/.test(u)), {
  error: 'expected stun:, stuns:, turn: or turns: URLs, e.g. stun:turn.example.org:3478',
});
