import { z } from 'zod';
import {
  autoFlag,
  bindAddress,
  field,
  optionalField,
  flag,
  int,
  ipAddress,
  ipList,
  list,
  listKeepingEmpty,
  natsServers,
  iceServerUrls,
  pathPrefix,
  portRange,
} from './fields.js';

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
    bindAddress: field(bindAddress, '0.0.0.0', {
      env: ['BIND_ADDRESS', 'CHORUS_BIND_ADDRESS'],
      doc: 'IP address the HTTP and TLS listeners bind to (`::` for all IPv4 and IPv6 addresses; `localhost` is also accepted).',
    }),
    listen: optionalField(
      z
        .string()
        .regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]*):\d{1,5}$/, {
          error: 'expected [host]:port, e.g. :80 or 127.0.0.1:8080',
        })
        .transform((v) => {
          const at = v.lastIndexOf(':');
          return { host: v.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(v.slice(at + 1)) };
        })
        .refine((v) => v.port <= 65535, { error: 'port above 65535' })
        .refine((v) => v.host === '' || bindAddress.safeParse(v.host).success, {
          error: 'the host must be an IP address (or localhost), e.g. 127.0.0.1:8080',
        }),
      {
        env: ['LISTEN'],
        doc: "`[host]:port` of the HTTP listener (the Beep seed's variable); when set it overrides `HTTP_PORT` and, with a host, `BIND_ADDRESS`.",
      },
    ),
    bodyLimitBytes: field(int(1024, 1 << 30), 1 << 20, {
      env: ['HTTP_BODY_LIMIT_BYTES'],
      doc: 'Largest HTTP request body accepted; larger bodies get 413.',
    }),
    trustProxy: field(list, [], {
      env: ['TRUST_PROXY'],
      doc: 'Addresses/CIDRs of reverse proxies whose X-Forwarded-For is believed. Empty: the socket address is the client.',
    }),
    requestTimeoutSeconds: field(int(0, 3600), 30, {
      env: ['HTTP_REQUEST_TIMEOUT_SECONDS'],
      doc: 'Deadline for receiving a whole request (headers and body); a slower one gets 408 and its connection is closed (0: none). Streaming audio uploads have `VOIP_UPLOAD_IDLE_SECONDS` instead.',
    }),
    maxConnectionsPerIp: field(int(0, 1_000_000), 256, {
      env: ['HTTP_MAX_CONNECTIONS_PER_IP'],
      doc: 'Open TCP connections (HTTP and WebSocket, both listeners) one client address may hold; more are closed at once (0: no cap). Counted on the socket address: `TRUST_PROXY` addresses are not capped, so behind a proxy let the proxy cap each client.',
    }),
  }),
  tls: z.object({
    port: field(int(0, 65535), 8443, {
      env: ['SSL_PORT', 'CHORUS_TLS_PORT'],
      doc: 'Port of the TLS listener, started only when both certificate and key are set.',
    }),
    cert: optionalField(z.string().min(1), {
      env: ['SSL_CERT', 'CHORUS_TLS_CERT'],
      doc: 'Path of the PEM certificate (chain) for the TLS listener; set together with `SSL_KEY` (one without the other is a config error). Both files are read and checked at start-up.',
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
      doc: 'Log one line per HTTP request: at `debug` for answers below 400, at `info` for 4xx and 5xx (`NO` to turn off).',
    }),
    pretty: field(autoFlag, 'auto', {
      env: ['LOG_PRETTY'],
      doc: 'Human-readable logs: `auto` when stdout is a terminal; `YES`/`NO` (or any boolean form) to force.',
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
  cluster: z.object({
    natsUrl: optionalField(natsServers, {
      env: ['CLUSTER_NATS_URL'],
      doc: 'NATS server URL(s) (comma list) of the cluster; setting it switches cluster mode on: the bus is NATS core and the store JetStream KV (the server needs `-js`), over one connection per node. Unset: one process with its in-process bus and the embedded store in `DATA_DIR`. Beep bites go there too when `NATS` is unset.',
    }),
    nodeId: optionalField(
      z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, { error: 'expected 1 to 64 letters, digits, - or _' }),
      {
        env: ['CLUSTER_NODE_ID'],
        doc: "This node's id in the cluster (unique per node). Unset: generated on the first start and kept in `DATA_DIR/node-id`, so a restarted node keeps it.",
        defaultDoc: '(generated, kept in `DATA_DIR`)',
      },
    ),
    connectTimeoutSeconds: field(int(1, 600), 10, {
      env: ['CLUSTER_CONNECT_TIMEOUT_SECONDS'],
      doc: 'At start-up, how long to wait for the first connection to `CLUSTER_NATS_URL` before exiting with an error (later losses are retried forever).',
    }),
    kvReplicas: field(int(1, 5), 1, {
      env: ['CLUSTER_KV_REPLICAS'],
      doc: "Copies JetStream keeps of each store bucket when it creates one (at most the NATS cluster's server count; 1 for a single nats-server).",
    }),
    processes: field(
      z.union([z.literal('auto'), int(1, 1024)], { error: 'expected auto or an integer from 1 to 1024' }),
      1,
      {
        env: ['CHORUS_PROCESSES'],
        doc: 'Chorus processes on this machine (`--processes`): more than 1 runs a supervisor and that many worker processes sharing the HTTP(S) ports, each its own cluster node with its own WebRTC UDP port (`WEBRTC_UDP_PORT` + index), over `CLUSTER_NATS_URL` or, unset, a `nats-server` it starts. `auto`: one per core. See docs/cluster.md.',
      },
    ),
    localNatsPort: field(int(0, 65535), 0, {
      env: ['CHORUS_NATS_PORT'],
      doc: 'With `CHORUS_PROCESSES` above 1 and no `CLUSTER_NATS_URL`: the 127.0.0.1 port of the nats-server the supervisor starts (`0`: a free one).',
    }),
    wireProtocol: optionalField(int(1, 1_000_000), {
      env: ['CLUSTER_WIRE_PROTOCOL'],
      doc: "For tests only: the cluster wire-protocol version this node claims instead of its own, to check that a node whose version differs from the running cluster's refuses to start (exit 2).",
      defaultDoc: "(this release's)",
    }),
  }),
  sinks: z.object({
    natsUrl: optionalField(natsServers, {
      env: ['NATS'],
      formerKeys: ['beep.nats'],
      doc: "NATS server URL(s) (comma list) where derived media goes: Beep's audio bites, e.g. `nats://localhost:4222` (the seed's default). Unset: `CLUSTER_NATS_URL`; both unset: bites are not published.",
      defaultDoc: '`CLUSTER_NATS_URL`',
    }),
  }),
  admin: z.object({
    token: optionalField(z.string().min(16, { error: 'expected at least 16 characters' }), {
      env: ['ADMIN_TOKEN'],
      doc: 'Bearer token for admin routes (e.g. `/v1/kick-active-users`), at least 16 characters (shorter stops start-up; `openssl rand -hex 16` makes one). Unset: admin routes answer 403 unless `ADMIN_OPEN`.',
    }),
    open: field(flag, false, {
      env: ['ADMIN_OPEN'],
      doc: '`YES` opens admin routes to anyone (only for a trusted network or local testing).',
    }),
  }),
  metrics: z.object({
    enabled: field(flag, true, { env: ['METRICS_ENABLED'], doc: 'Serve Prometheus metrics at `/metrics`.' }),
    token: optionalField(z.string().min(16, { error: 'expected at least 16 characters' }), {
      env: ['METRICS_TOKEN'],
      doc: '`/metrics` then requires `Authorization: Bearer <token>` (401 otherwise); at least 16 characters (shorter stops start-up). Unset: open to anyone who reaches its port.',
    }),
    port: optionalField(int(0, 65535), {
      env: ['METRICS_PORT'],
      doc: 'Serve `/metrics` on its own listener at this port instead of the HTTP port (which then answers 404 for it).',
      defaultDoc: '(the HTTP port)',
    }),
    bindAddress: optionalField(bindAddress, {
      env: ['METRICS_BIND_ADDRESS'],
      doc: 'Address of the `METRICS_PORT` listener, e.g. `127.0.0.1` to keep metrics local while the main port is public. Unset: `BIND_ADDRESS`.',
      defaultDoc: '`BIND_ADDRESS`',
    }),
  }),
  network: z.object({
    externalIp: optionalField(ipAddress, {
      env: ['EXTERNAL_IP'],
      doc: 'The IP address other components and clients reach this server at, when it is behind NAT or a proxy (sent to the stream coordinator, announced in ICE candidates). A literal IP: the coordinator ignores host names.',
    }),
    externalPort: optionalField(int(1, 65535), {
      env: ['EXTERNAL_PORT'],
      doc: 'The port other components reach this server at, when it differs from the listening port.',
    }),
    externalSsl: field(flag, false, {
      env: ['EXTERNAL_SSL'],
      doc: '`YES` when other components reach this server over TLS (told to the stream coordinator).',
    }),
    iceServers: field(iceServerUrls, [], {
      env: ['ICE_SERVERS'],
      doc: 'STUN/TURN servers the browser pages use for peer-to-peer calls (`/signal/`), a comma list of `stun:`, `turn:` or `turns:` URLs, e.g. `stun:turn.example.org:3478,turn:turn.example.org:3478?transport=udp`; handed out by `GET /ice-servers`. See docs/operations.md (coturn).',
    }),
    turnSecret: optionalField(z.string().min(16, { error: 'at least 16 characters' }), {
      env: ['TURN_SECRET'],
      doc: "The TURN server's shared secret (coturn's `static-auth-secret`): `GET /ice-servers` gives the `turn:`/`turns:` URLs of `ICE_SERVERS` a credential valid for 24 h (TURN REST API). Unset: TURN URLs are handed out without credentials.",
    }),
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
    fastReceive: field(flag, true, {
      env: ['SIGNAL_FAST_RECEIVE'],
      doc: "Read whole text frames of `/v1/connect` sockets directly, past ws's frame parser (the same messages, fewer CPU cycles); any other read goes through ws as before. `NO`: every read through ws.",
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
    registerRatePerMinute: field(int(0, 1_000_000), 60, {
      env: ['SIGNAL_REGISTER_RATE_PER_MINUTE'],
      doc: '`/v1/register` requests one client IP may make per minute (token bucket, burst `SIGNAL_REGISTER_BURST`); more get 429 with `Retry-After`. `0`: no limit.',
    }),
    registerBurst: field(int(1, 1_000_000), 60, {
      env: ['SIGNAL_REGISTER_BURST'],
      doc: '`/v1/register` requests one client IP may make at once above `SIGNAL_REGISTER_RATE_PER_MINUTE`.',
    }),
    maxNamesPerIpPerDay: field(int(0, 1_000_000), 200, {
      env: ['SIGNAL_MAX_NAMES_PER_IP_PER_DAY'],
      doc: 'New names one client IP may register in any 24 hours (counted on this node); more get 429. `0`: no cap.',
    }),
    nameTtlDays: field(
      z.coerce
        .number({ error: 'expected a number of days from 0 to 36500' })
        .min(0, { error: 'expected a number of days from 0 to 36500' })
        .max(36500, { error: 'expected a number of days from 0 to 36500' }),
      180,
      {
        env: ['SIGNAL_NAME_TTL_DAYS'],
        doc: 'A name not used (registered, connected, session checked) for this many days is deleted and free again; a connected name never is. Fractions allowed; `0`: names never expire.',
      },
    ),
    cookieSecret: optionalField(z.string().min(32, { error: 'expected at least 32 characters' }), {
      env: ['COOKIE_SECRET'],
      doc: 'Secret that signs session cookies. Unset: one is generated once and kept in the data directory.',
      defaultDoc: 'generated',
    }),
  }),
  webrtc: z.object({
    udpPort: field(int(0, 65535), 7882, {
      env: ['WEBRTC_UDP_PORT'],
      doc: 'The one UDP port every WebRTC peer connection shares (ICE UDP mux). Open it in the firewall.',
    }),
    portRange: optionalField(portRange, {
      env: ['WEBRTC_PORT_RANGE'],
      doc: 'Instead of the one mux port: a UDP port range `first-last`, one port per peer connection (e.g. `50000-60000`).',
    }),
    bindAddress: optionalField(ipAddress, {
      env: ['WEBRTC_BIND_ADDRESS'],
      doc: 'IP address the WebRTC UDP socket binds to. Unset: all interfaces.',
    }),
    nackHistoryPackets: field(int(0, 65536), 512, {
      env: ['WEBRTC_NACK_HISTORY_PACKETS'],
      doc: 'Packets each published track keeps for retransmission on NACK, one history shared by all its subscribers (about 1.2 KB each for video); `0` turns retransmission off.',
    }),
    peerTimeoutSeconds: field(int(1, 3600), 15, {
      env: ['WEBRTC_PEER_TIMEOUT_SECONDS'],
      doc: 'A peer connection from which no media or RTCP arrives for this long is closed and its resources freed.',
    }),
    maxPeers: field(int(0, 1_000_000), 0, {
      env: ['WEBRTC_MAX_PEERS'],
      doc: 'At most this many WebRTC peer connections at once (Blue Sky publishers and subscribers, Beep connections); more are refused with 503 and `Retry-After`. `0`: no fixed cap.',
    }),
    overloadBusyPercent: field(int(0, 100), 98, {
      env: ['WEBRTC_OVERLOAD_BUSY_PERCENT'],
      doc: 'New WebRTC peer connections are refused (503, `Retry-After`) while the event loop was busy more than this share of the last 3 s (it forwards every packet), so the calls already running stay whole; meanwhile `/readyz` answers 503 (component `admission`). Measured from when the server listens; `0` turns the check off.',
    }),
    keyframeIntervalMs: field(int(100, 60000), 1000, {
      env: ['WEBRTC_KEYFRAME_MIN_INTERVAL_MS'],
      doc: 'Keyframe requests forwarded to a publisher, at most one per this many ms per track.',
    }),
    videoCodecs: field(
      list.pipe(
        z
          .array(z.enum(['VP8', 'VP9', 'H264', 'AV1'], { error: 'expected VP8, VP9, H264 or AV1' }))
          .min(1, { error: 'expected at least one video codec' }),
      ),
      ['VP8', 'H264', 'VP9', 'AV1'],
      {
        env: ['WEBRTC_VIDEO_CODECS'],
        doc: "The order a room's video codec is chosen in: the first of these its first video publisher offers becomes the room's codec; later publishers must send it and subscribers must decode it (see docs/sfu.md). Codecs left out are never forwarded.",
      },
    ),
  }),
  bluesky: z.object({
    enabled: field(flag, true, { env: ['BLUESKY_ENABLED'], doc: 'Mount the Blue Sky surface (seed 004).' }),
    roomCreateRatePerMinute: field(int(0, 1_000_000), 30, {
      env: ['BLUESKY_ROOM_CREATE_RATE_PER_MINUTE'],
      doc: '`PUT /webrtc/room` requests one client IP may make per minute (token bucket, burst `BLUESKY_ROOM_CREATE_BURST`); more get 429 with `Retry-After`. `0`: no limit.',
    }),
    roomCreateBurst: field(int(1, 1_000_000), 30, {
      env: ['BLUESKY_ROOM_CREATE_BURST'],
      doc: '`PUT /webrtc/room` requests one client IP may make at once above `BLUESKY_ROOM_CREATE_RATE_PER_MINUTE`.',
    }),
    joinRatePerMinute: field(int(0, 1_000_000), 120, {
      env: ['BLUESKY_JOIN_RATE_PER_MINUTE'],
      doc: 'Secured mode: `POST /webrtc/room/:id/join` claims (each stores a participant key) one client IP may make per minute (burst `BLUESKY_JOIN_BURST`); more get 429 with `Retry-After`. `0`: no limit.',
    }),
    joinBurst: field(int(1, 1_000_000), 60, {
      env: ['BLUESKY_JOIN_BURST'],
      doc: 'Secured mode: join claims one client IP may make at once above `BLUESKY_JOIN_RATE_PER_MINUTE`.',
    }),
    maxOpenRoomsPerIp: field(int(0, 1_000_000), 100, {
      env: ['BLUESKY_MAX_OPEN_ROOMS_PER_IP'],
      doc: 'Rooms one client IP may have created that are still open (counted on this node since start); one more gets 429. `0`: no cap.',
    }),
    roomTtlHours: field(
      z.coerce
        .number({ error: 'expected a number of hours from 0 to 876000' })
        .min(0, { error: 'expected a number of hours from 0 to 876000' })
        .max(876000, { error: 'expected a number of hours from 0 to 876000' }),
      24,
      {
        env: ['BLUESKY_ROOM_TTL_HOURS'],
        doc: 'A room nobody has joined (an SDP exchange) for this many hours, with nobody publishing in it, is deleted. Fractions allowed; `0`: rooms never expire.',
      },
    ),
    prefixes: field(listKeepingEmpty(pathPrefix), ['', '/api'], {
      env: ['BLUESKY_PREFIXES'],
      doc: 'Path prefixes of the Blue Sky routes (the original served them under `/api`).',
      defaultDoc: '`,/api` (root and `/api`)',
    }),
    maxSdpBytes: field(int(1024, 16 << 20), 256 * 1024, {
      env: ['BLUESKY_MAX_SDP_BYTES'],
      doc: 'Largest session description the SDP route takes, after base64 and gzip are undone (gzip is inflated off the event loop and stopped at this size); larger ones get 413.',
    }),
    secureRooms: field(flag, false, {
      env: ['BLUESKY_SECURE_ROOMS'],
      doc: "`YES`: creating a room returns a secret admin key that closing it requires, and each participant joins for a secret key that its SDP requests must carry, so nobody can close a room or publish as someone else. `NO`: the original's behaviour (whoever names the admin is the admin). Recommended for anything public; see docs/bluesky.md.",
    }),
  }),
  voip: z.object({
    enabled: field(flag, true, {
      env: ['VOIP_ENABLED'],
      doc: 'Mount the VOIP surface (seed 000, gostream).',
    }),
    prefix: field(pathPrefix, '', {
      env: ['VOIP_PREFIX'],
      doc: 'Path prefix of the VOIP routes (`/messages`, `/newCall`, ...); the original served them at the root.',
      defaultDoc: '(root)',
    }),
    siteEnabled: field(flag, false, {
      env: ['SITE_ENABLED'],
      doc: "`YES`: users are the side site's integer ids, authenticated by its `CSRFToken`s. `NO`: standalone, users are P-256 public keys proving themselves with signed challenges.",
    }),
    siteUrl: field(z.url({ error: 'expected an http(s) URL' }), 'http://localhost', {
      env: ['SITE_URL'],
      doc: 'Base URL of the side site API (`/Membres/crossLogin/{token}`, ...).',
    }),
    siteOrigin: field(z.string().min(1), 'http://localhost', {
      env: ['SITE_ORIGIN'],
      doc: 'The one origin allowed by CORS (with credentials) in side-site mode. Standalone mode allows any origin, without credentials.',
    }),
    siteTimeoutMs: field(int(100, 60_000), 3000, {
      env: ['SITE_TIMEOUT_MS'],
      doc: 'Timeout of each call to the side site; a site that does not answer in time refuses the request with 503.',
    }),
    siteCacheSeconds: field(int(0, 3600), 10, {
      env: ['SITE_CACHE_SECONDS'],
      doc: "How long the side site's answers (token to user, may-call, room access) are reused; `0` asks every time. Failures are never cached.",
    }),
    ringTimeoutSeconds: field(int(1, 3600), 45, {
      env: ['VOIP_RING_TIMEOUT_SECONDS'],
      doc: 'A call not accepted or rejected within this time ends; both parties get `declineCall`.',
    }),
    callIdleSeconds: field(int(1, 3600), 30, {
      env: ['VOIP_CALL_IDLE_SECONDS'],
      doc: 'An accepted call with no upload and no listener open for this long ends (`endCall` event).',
    }),
    challengeTtlSeconds: field(int(5, 3600), 120, {
      env: ['VOIP_CHALLENGE_TTL_SECONDS'],
      doc: 'Lifetime of a handshake challenge between two keys (standalone mode); each is single-use.',
    }),
    ticketTtlSeconds: field(int(5, 86_400), 3600, {
      env: ['VOIP_TICKET_TTL_SECONDS'],
      doc: 'Lifetime of a server challenge from `/getCallTicket` or `/newCall` (standalone mode).',
    }),
    keepAliveSeconds: field(int(1, 300), 15, {
      env: ['VOIP_SSE_KEEPALIVE_SECONDS'],
      doc: 'Interval of the `:` comment lines that keep `/messages` streams open through proxies.',
    }),
    replayEvents: field(int(0, 10_000), 50, {
      env: ['VOIP_SSE_REPLAY_EVENTS'],
      doc: 'Recent events kept per user (for 5 minutes) and replayed to a stream reconnecting with `Last-Event-ID`.',
    }),
    inputBufferMs: field(int(60, 10_000), 500, {
      env: ['VOIP_INPUT_BUFFER_MS'],
      doc: 'Audio buffered per speaker; beyond it the oldest is dropped (WebSocket) or the upload is paused (POST).',
    }),
    oggBacklogMs: field(int(0, 60_000), 7000, {
      env: ['VOIP_OGG_BACKLOG_MS'],
      doc: 'Recent audio sent to a new Ogg/Opus listener at once, so browsers (which buffer about 32 KB before playing) start at once, this far behind live. `0`: none.',
    }),
    opusBitrate: field(int(6000, 510_000), 32_000, {
      env: ['VOIP_OPUS_BITRATE'],
      doc: 'Bitrate of the Opus streams served to listeners, bit/s.',
    }),
    httpFlushMs: field(int(20, 1000), 40, {
      env: ['VOIP_HTTP_FLUSH_MS'],
      doc: "How often HTTP listeners (WAV, Ogg) are written to: each flush is one write per listener, the server's main cost at 2,000 listeners. 40 ms (two frames a page) halves the writes of 20 ms for 20 ms more delay, which a browser's audio element (buffering seconds of a stream) does not show; 100 ms (the pace of the original) measured a quarter less server CPU and 20 % fewer bytes (BENCHMARKS.md). Rounded to 20 ms.",
    }),
    opusComplexity: field(int(0, 10), 10, {
      env: ['VOIP_OPUS_COMPLEXITY'],
      doc: 'Opus encoder complexity (0-10). In VoIP mode 8-10 measured fastest here (about 66 us a 20 ms frame; 5 took 160 us): see BENCHMARKS.md.',
    }),
    maxRoomMembers: field(int(2, 10_000), 100, {
      env: ['VOIP_MAX_ROOM_MEMBERS'],
      doc: 'Members (speakers and listeners) one room admits; more get 429.',
    }),
    maxRooms: field(int(1, 1_000_000), 1000, {
      env: ['VOIP_MAX_ROOMS'],
      doc: 'Rooms that may exist at once; creating one more gets 429.',
    }),
    maxUploadFrameBytes: field(int(1024, 16 << 20), 256 * 1024, {
      env: ['VOIP_MAX_UPLOAD_FRAME_BYTES'],
      doc: 'Largest WebSocket message of raw PCM accepted; a larger one closes the upload with 1009.',
    }),
    uploadIdleSeconds: field(int(0, 3600), 20, {
      env: ['VOIP_UPLOAD_IDLE_SECONDS'],
      doc: 'An HTTP audio upload (`POST`/`PUT /upCall`, `/upRoom`) that sends no byte for this long is closed (0: never). Uploads have no whole-request deadline.',
    }),
  }),
  beep: z.object({
    enabled: field(flag, true, { env: ['BEEP_ENABLED'], doc: 'Mount the Beep surface (seed 003).' }),
    prefix: field(pathPrefix, '', {
      env: ['BEEP_PREFIX'],
      doc: 'Path prefix of the Beep routes (`/connect`, `/join/:conversationid`).',
      defaultDoc: '(root)',
    }),
    trustedProxies: field(ipList, ['127.0.0.0/8', '::1'], {
      env: ['BEEP_TRUSTED_PROXIES'],
      doc: "Addresses (IPs, CIDRs) whose `X-User-Claim` header is believed: the reverse proxy that runs Beep's auth. Anyone can send the header, so by default only loopback is trusted.",
      defaultDoc: '`127.0.0.0/8,::1`',
    }),
    tokenSecret: optionalField(z.string().min(16, { error: 'at least 16 characters' }), {
      env: ['BEEP_TOKEN_SECRET'],
      doc: 'When set, a `?token=` HS256 JWT signed with this secret (claims `userid`, `clientid`, and `exp`) is accepted instead of the header, from any address.',
    }),
    tokenMaxLifetimeSeconds: field(int(1, 31_536_000), 86_400, {
      env: ['BEEP_TOKEN_MAX_LIFETIME_SECONDS'],
      doc: 'A `?token=` must carry `exp`, at most this many seconds from now and, when it has `iat`, from `iat`; otherwise 401.',
    }),
    permissionsHost: field(z.url({ error: 'expected an http(s) URL' }), 'http://permissions', {
      env: ['PERMISSIONS_HOST'],
      doc: 'Base URL of backend-permissions, asked `GET /user/{userid}/conversation/{id}` before a join.',
    }),
    permissionsTimeoutMs: field(int(100, 60_000), 3000, {
      env: ['PERMISSIONS_TIMEOUT_MS'],
      doc: 'Timeout of the permission check; past it the join gets 503.',
    }),
    biteSeconds: field(int(1, 60), 1, {
      env: ['BEEP_BITE_SECONDS'],
      doc: "Length of a bite: one speaker's audio, cut at wall-clock multiples of this.",
    }),
    storeSubjects: field(list, ['store'], {
      env: ['BEEP_STORE_SUBJECTS'],
      doc: 'Subjects each `Store` message is published on (the original: `store`; some consumers read `new_store`).',
      defaultDoc: '`store`',
    }),
    allowedOrigins: field(list, [], {
      env: ['BEEP_ALLOWED_ORIGINS'],
      doc: 'Origins allowed to open `/connect` from a browser (`*` for any). Empty: same-origin pages and non-browser clients only.',
    }),
  }),
  stream: z.object({
    enabled: field(flag, true, { env: ['STREAM_ENABLED'], doc: 'Mount the Stream surface (seed 002).' }),
    prefix: field(pathPrefix, '', {
      env: ['STREAM_PREFIX'],
      doc: 'Path prefix of the stream URLs `/{channel}/{key}/{kind}`.',
      defaultDoc: '(root)',
    }),
    idMaxLength: field(int(1, 1024), 128, {
      env: ['ID_MAX_LENGTH'],
      doc: 'Longest channel and key accepted (characters `a-z`, `0-9`, `-`, `_`).',
    }),
    gopCacheSizeMb: field(int(0, 65536), 256, {
      env: ['GOP_CACHE_SIZE_MB'],
      doc: 'Per-channel cache of the stream so far, replayed to late receivers, in MiB (each chunk counts its size + 16 bytes); `0` disables it.',
    }),
    cacheMode: field(z.enum(['auto', 'all']), 'auto', {
      env: ['STREAM_CACHE_MODE'],
      doc: '`auto`: a WebM or MPEG-TS stream is cached from its latest keyframe (plus its header), so late receivers start within one group of pictures of live; other streams whole. `all`: every stream whole since publishing began, as the original does.',
    }),
    maxMessageBytes: field(int(1024, 256 << 20), 16 << 20, {
      env: ['STREAM_MAX_MESSAGE_BYTES'],
      doc: 'Largest binary message a publisher may send; a larger one closes the publisher with 1009.',
    }),
    receiverQueueBytes: field(int(64 * 1024, 1 << 30), 8 << 20, {
      env: ['STREAM_RECEIVER_QUEUE_BYTES'],
      doc: 'Bytes that may wait to be sent to one receiver. Past this the receiver is too slow and `STREAM_SLOW_RECEIVER` applies.',
    }),
    slowReceiver: field(z.enum(['skip', 'close']), 'skip', {
      env: ['STREAM_SLOW_RECEIVER'],
      doc: '`skip`: a too-slow receiver misses chunks until its queue is half empty, then continues live. `close`: it is closed with 1013.',
    }),
    playWhitelist: field(ipList, [], {
      env: ['PLAY_WHITELIST'],
      doc: 'IPs and CIDRs (v4 and v6) allowed to receive; empty or `*` allows everyone.',
    }),
    maxIpConcurrentConnections: field(int(0, 1_000_000), 4, {
      env: ['MAX_IP_CONCURRENT_CONNECTIONS'],
      doc: 'Stream connections (any kind) one IP may hold at once; more get 429.',
    }),
    concurrentLimitWhitelist: field(ipList, [], {
      env: ['CONCURRENT_LIMIT_WHITELIST'],
      doc: 'IPs and CIDRs exempt from the per-IP limit; `*` exempts everyone.',
    }),
    heartbeatSeconds: field(int(1, 3600), 20, {
      env: ['STREAM_HEARTBEAT_SECONDS'],
      doc: 'Interval of the text `h` heartbeat the server sends to every stream connection.',
    }),
    idleTimeoutSeconds: field(int(1, 3600), 60, {
      env: ['STREAM_IDLE_TIMEOUT_SECONDS'],
      doc: 'A stream connection that sends nothing (not even a heartbeat) for this long is closed.',
    }),
    disableTestClient: field(flag, false, {
      env: ['DISABLE_TEST_CLIENT'],
      doc: '`YES` stops serving the stream test client page at `/stream/`.',
    }),
    rtmpChunkSize: field(int(1, 1 << 24), 128, {
      env: ['RTMP_CHUNK_SIZE'],
      doc: "Accepted for compatibility with the original's RTMP sibling; it has no effect in Chorus.",
    }),
    controlBaseUrl: optionalField(z.url({ error: 'expected a ws:// or wss:// URL' }), {
      env: ['CONTROL_BASE_URL'],
      doc: 'Coordinator base URL (e.g. `wss://10.0.0.1:8080/`). Set: every publish is authorized by the coordinator. Unset: any key is accepted.',
    }),
    controlSecret: optionalField(z.string().min(1), {
      env: ['CONTROL_SECRET'],
      doc: 'Secret shared with the coordinator; signs the HS256 token sent when connecting to it.',
    }),
    controlPublishTimeoutSeconds: field(int(1, 300), 20, {
      env: ['CONTROL_PUBLISH_TIMEOUT_SECONDS'],
      doc: 'How long a publish waits for the coordinator to accept it before it is refused.',
    }),
    controlReconnectMaxSeconds: field(int(1, 600), 10, {
      env: ['CONTROL_RECONNECT_MAX_SECONDS'],
      doc: 'Longest wait between attempts to reach the coordinator (backoff from 0.5 s doubling to this).',
    }),
  }),
  chorus: z.object({
    enabled: field(flag, true, {
      env: ['CHORUS_API_ENABLED'],
      doc: "Mount Chorus's own API under `/chorus/v1/` (access tokens, room service, OpenAPI; docs/native-api.md).",
    }),
    apiKeys: field(
      list.refine((pairs) => pairs.every((p) => /^[A-Za-z0-9_.-]{1,64}:.{32,}$/.test(p)), {
        error: 'expected key:secret pairs (key: letters, digits, _ . -; secret: at least 32 characters)',
      }),
      [],
      {
        env: ['CHORUS_API_KEYS'],
        doc: 'API keys of the native API, a comma list of `key:secret` (secret at least 32 characters; `openssl rand -hex 24` makes one). Access tokens are HS256 JWTs signed with a secret and carry its key as `kid`. Empty: every native route answers 401.',
      },
    ),
    webhookUrls: field(
      list.refine((urls) => urls.every((u) => /^https?:\/\/\S+$/.test(u)), {
        error: 'expected http(s) URLs',
      }),
      [],
      {
        env: ['CHORUS_WEBHOOK_URLS'],
        doc: "URLs (comma list) that receive the native API's webhooks: room, participant and track events, signed with the first of `CHORUS_API_KEYS` (which must then be set), retried with backoff (docs/native-api.md). Empty: none are sent.",
      },
    ),
  }),
});

/** The config as the schema outputs it. */
export type Config = z.output<typeof configSchema>;
/** Config as written in a file or passed to `createServer` in tests: every key optional. */
export type ConfigInput = DeepPartial<z.input<typeof configSchema>> & FormerKeys;

/** Keys of earlier versions that are still accepted (each field's `formerKeys`). */
// A type alias, not an interface: test fixtures treat a ConfigInput as a plain record.
type FormerKeys = {
  /** Now `sinks.natsUrl`. */
  beep?: { nats?: string | readonly string[] | undefined } | undefined;
};

export type DeepPartial<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> | undefined }
    : T;
