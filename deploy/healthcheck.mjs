/* global fetch, AbortSignal */
// The image's HEALTHCHECK: GET /healthz on the HTTP listener the server was configured
// with (the same variables it reads), exit 0 on 200. Node's fetch: the image has no curl.
const env = process.env;
let host = env.BIND_ADDRESS ?? env.CHORUS_BIND_ADDRESS ?? '';
let port = env.HTTP_PORT ?? env.CHORUS_HTTP_PORT ?? '8000';
if (env.LISTEN) {
  const at = env.LISTEN.lastIndexOf(':');
  port = env.LISTEN.slice(at + 1);
  if (at > 0) host = env.LISTEN.slice(0, at);
}
host = host.replace(/^\[|\]$/g, '');
// A wildcard or unset address listens on loopback too.
if (host === '' || host === '0.0.0.0' || host === '::' || host === 'localhost') host = '127.0.0.1';
const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/healthz`;
fetch(url, { signal: AbortSignal.timeout(4000) }).then(
  (res) => process.exit(res.ok ? 0 : 1),
  () => process.exit(1),
);
