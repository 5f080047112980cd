import type { Server, Socket } from 'node:net';
import { IpConnectionLimiter } from '../lib/ip-connection-limiter.js';
import type { ThrottledLog } from '../lib/throttled-log.js';

/** proxy-addr's names (accepted in TRUST_PROXY by Fastify) as the ranges they stand for. */
const NAMED_RANGES: Record<string, string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/**
 * A server-wide cap on open TCP connections per client address, counted on the socket's
 * own address (before any HTTP is read, so before X-Forwarded-For could say otherwise).
 * Trusted proxies carry many clients on their connections and are not capped; behind
 * a proxy, the proxy is the place to cap each client. Over the cap a connection is
 * destroyed at once, and a throttled warn line says so.
 */
export function capConnectionsPerIp(
  servers: readonly Server[],
  max: number,
  trustedProxies: readonly string[],
  clientLog: ThrottledLog,
  onRefused: () => void = () => undefined,
): IpConnectionLimiter {
  const exempt = trustedProxies.flatMap((p) => NAMED_RANGES[p.trim().toLowerCase()] ?? [p]);
  const limiter = new IpConnectionLimiter(max, exempt);
  const onConnection = (socket: Socket): void => {
    const ip = socket.remoteAddress;
    if (ip === undefined) return;
    if (!limiter.acquire(ip)) {
      onRefused();
      clientLog.warn({ ip, limit: max }, 'connection refused: too many open connections from this address');
      socket.destroy();
      return;
    }
    socket.once('close', () => limiter.release(ip));
  };
  // First in line, so a refused socket is gone before the HTTP server sets it up.
  for (const server of servers) server.prependListener('connection', onConnection);
  return limiter;
}
