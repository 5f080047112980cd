# Chorus container image: a build stage (all dependencies, `npm run build`, then only the
# production dependencies kept) and a small runtime stage on the Node LTS, run as a
# non-root user. All configuration is by environment (the README's table); the data
# directory is a volume. Build, run and the CI check: docs/deploy.md.
#
#   docker build -t chorus .
#   docker run -p 8000:8000 -p 7882:7882/udp -e EXTERNAL_IP=<this host's IP> -v chorus-data:/var/lib/chorus chorus
#
# NODE_IMAGE is the base of both stages: the official image by default; CI, which reaches
# no image registry, passes a Debian bookworm + Node 24 image it builds locally
# (.ci/container-check). Any glibc Debian/Ubuntu image with node and npm on PATH fits:
# the native modules (node-datachannel, lmdb, msgpackr-extract, opus) come prebuilt for
# linux-x64/arm64 glibc, so neither stage needs a compiler.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Dependencies first, so a source change does not reinstall them. No install scripts:
# every native module used here ships its binary in a platform package.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN NODE_ENV=production npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can check it and a volume can be
# prepared for it (chown 10001) ahead of time.
RUN groupadd --gid 10001 chorus \
 && useradd --uid 10001 --gid chorus --no-create-home --home-dir /app --shell /usr/sbin/nologin chorus \
 && mkdir -p /var/lib/chorus \
 && chown chorus:chorus /var/lib/chorus
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY deploy/healthcheck.mjs ./healthcheck.mjs
# Not set here (BENCHMARKS.md, #17.2): MALLOC_ARENA_MAX=1 takes about 3 MiB off an idle
# process on Node 24 (one malloc arena instead of one per V8/libuv thread) for up to a few
# per cent of SFU CPU; pass it with -e where many idle processes share a host.
ENV NODE_ENV=production \
    DATA_DIR=/var/lib/chorus \
    HTTP_PORT=8000 \
    WEBRTC_UDP_PORT=7882
VOLUME ["/var/lib/chorus"]
# HTTP and WebSocket (every surface, /healthz, /readyz, /metrics); the WebRTC ICE UDP mux.
# With TLS set (SSL_CERT/SSL_KEY) the TLS listener is on SSL_PORT, 8443 by default.
EXPOSE 8000/tcp 7882/udp
USER 10001:10001
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "/app/healthcheck.mjs"]
# SIGTERM drains (readyz 503, new sessions 503, running calls get SHUTDOWN_GRACE_SECONDS,
# then at most 5 s to close) and exits 0; give `docker stop -t` more than grace + 5 s.
STOPSIGNAL SIGTERM
# --max-semi-space-size=16: V8's young generation capped at Node 20's 2 x 16 MiB. Node 24
# grows it to 128 MiB under a burst of connections and keeps it: 10 KiB of RSS for each of
# 10,000 idle Signal sockets against about 5 KiB with the cap (BENCHMARKS.md, #17.1).
CMD ["node", "--max-semi-space-size=16", "dist/src/main.js", "serve"]
