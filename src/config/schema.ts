import { z } from 'zod';
import { field, optionalField, flag, int, list, listKeepingEmpty, pathPrefix } from './fields.js';

/**
 * The one configuration schema. Every leaf names the environment variables that set it;
 * `scripts/gen-config-docs.ts` renders the README's table from this file.
 */
export const configSchema = z.object({
  http: z.object({
    port: field(int(0, 65535), 8000, {
      env: ['HTTP_PORT', 'CHORUS_HTTP_PORT'],
      doc: 'TCP port of the plain HTTP/WebSocket listener (0 picks a free port).',
    }),
    bindAddress: field(z.string().min(1), '0.0.0.0', {
      env: ['BIND_ADDRESS', 'CHORUS_BIND_ADDRESS'],
      doc: 'Address the HTTP and TLS listeners bind to (`::` for all IPv4 and IPv6 addresses).',
    }),
    bodyLimitBytes: field(int(1024, 1 << 30), 1 << 20, {
      env: ['HTTP_BODY_LIMIT_BYTES'],
      doc: 'Largest HTTP request body accepted; larger bodies get 413.',
    }),
    trustProxy: field(list, [], {
      env: ['TRUST_PROXY'],
      doc: 'Addresses/CIDRs of reverse proxies whose X-Forwarded-For is believed. Empty: the socket address is the client.',
    }),
  }),
  tls: z.object({
    port: field(int(0, 65535), 8443, {
      env: ['SSL_PORT', 'CHORUS_TLS_PORT'],
      doc: 'Port of the TLS listener, started only when both certificate and key are set.',
    }),
    cert: optionalField(z.string().min(1), {
      env: ['SSL_CERT', 'CHORUS_TLS_CERT'],
      doc: 'Path of the PEM certificate (chain) for the TLS listener.',
    }),
    key: optionalField(z.string().min(1), {
      env: ['SSL_KEY', 'CHORUS_TLS_KEY'],
      doc: 'Path of the PEM private key for the TLS listener.',
    }),
    reloadSeconds: field(int(0, 86400), 60, {
      env: ['SSL_CHECK_RELOAD_SECONDS'],
      doc: 'How often the certificate and key files are checked for changes and reloaded without a restart (0: never).',
    }),
  }),
  log: z.object({
    level: field(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), 'info', {
      env: ['LOG_LEVEL'],
      doc: 'Log level. Logs are JSON lines on stdout, pretty-printed when stdout is a terminal.',
    }),
    debug: field(flag, false, {
      env: ['LOG_DEBUG'],
      doc: "`YES` lowers the log level to `debug` (the seeds' switch).",
    }),
    requests: field(flag, true, {
      env: ['LOG_REQUESTS'],
      doc: 'Log one line per HTTP request and WebSocket connection (`NO` to turn off).',
    }),
    pretty: field(z.enum(['auto', 'yes', 'no']), 'auto', {
      env: ['LOG_PRETTY'],
      doc: 'Human-readable logs: `auto` when stdout is a terminal.',
    }),
  }),
  shutdown: z.object({
    graceSeconds: field(int(0, 3600), 10, {
      env: ['SHUTDOWN_GRACE_SECONDS'],
      doc: 'On SIGTERM/SIGINT: how long to wait for connections to finish before exiting anyway.',
    }),
  }),
  store: z.object({
    dataDir: field(z.string().min(1), './data', {
      env: ['DATA_DIR', 'CHORUS_DATA_DIR'],
      doc: 'Directory of the embedded database (identities, rooms, secrets). Created when missing.',
    }),
  }),
  admin: z.object({
    token: optionalField(z.string().min(16, { error: 'expected at least 16 characters' }), {
      env: ['ADMIN_TOKEN'],
      doc: 'Bearer token for admin routes (e.g. `/v1/kick-active-users`). Unset: admin routes answer 403 unless `ADMIN_OPEN`.',
    }),
    open: field(flag, false, {
      env: ['ADMIN_OPEN'],
      doc: '`YES` opens admin routes to anyone (only for a trusted network or local testing).',
    }),
  }),
  metrics: z.object({
    enabled: field(flag, true, { env: ['METRICS_ENABLED'], doc: 'Serve Prometheus metrics at `/metrics`.' }),
  }),
  web: z.object({
    enabled: field(flag, true, {
      env: ['WEB_ENABLED'],
      doc: 'Serve the browser pages (`/signal/`, ...) bundled under `web/dist`.',
    }),
  }),
  signal: z.object({
    enabled: field(flag, true, { env: ['SIGNAL_ENABLED'], doc: 'Mount the Signal surface (seed 001).' }),
    prefixes: field(listKeepingEmpty(pathPrefix), ['', '/api'], {
      env: ['SIGNAL_PREFIXES'],
      doc: 'Path prefixes the Signal routes are mounted under (comma list; empty item = root). `/api` serves the original web app, which calls through a proxy at `/api`.',
      defaultDoc: '`,/api` (root and `/api`)',
    }),
    maxFrameBytes: field(int(64, 16 << 20), 64 * 1024, {
      env: ['SIGNAL_MAX_FRAME_BYTES'],
      doc: 'Largest WebSocket message accepted on `/v1/connect`; larger ones close the socket with 1009.',
    }),
    rateLimitPerSecond: field(int(1, 100000), 50, {
      env: ['SIGNAL_RATE_LIMIT'],
      doc: 'Messages per second a connection may send (token bucket); excess messages get a `RATE_LIMITED` reply.',
    }),
    rateLimitBurst: field(int(1, 100000), 100, {
      env: ['SIGNAL_RATE_BURST'],
      doc: 'Messages a connection may send at once above the rate; a connection dropping more than this many in a second is closed with 1008.',
    }),
    heartbeatSeconds: field(int(1, 3600), 30, {
      env: ['SIGNAL_HEARTBEAT_SECONDS'],
      doc: 'WebSocket ping interval; a connection that has not answered the previous ping is closed.',
    }),
    usernameMaxLength: field(int(1, 256), 32, {
      env: ['SIGNAL_USERNAME_MAX_LENGTH'],
      doc: 'Longest username accepted by `/v1/register` (letters, digits, `_`, `-`, `.`).',
    }),
    cookieSecret: optionalField(z.string().min(32, { error: 'expected at least 32 characters' }), {
      env: ['COOKIE_SECRET'],
      doc: 'Secret that signs session cookies. Unset: one is generated once and kept in the data directory.',
      defaultDoc: 'generated',
    }),
  }),
});

/** The config as the schema outputs it. */
export type Config = z.output<typeof configSchema>;
/** Config as written in a file or passed to `createServer` in tests: every key optional. */
export type ConfigInput = DeepPartial<z.input<typeof configSchema>>;

export type DeepPartial<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> | undefined }
    : T;
