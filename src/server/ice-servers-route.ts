import { createHmac } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.js';

/** How long a TURN credential handed to a page stays valid. */
export const TURN_CREDENTIAL_SECONDS = 24 * 3600;

export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

/**
 * The `RTCPeerConnection` iceServers for the pages: the STUN URLs as they are, the TURN
 * URLs with a time-limited credential when `TURN_SECRET` is set (the TURN REST API that
 * coturn's `use-auth-secret` checks: user `<expiry>:chorus`, password
 * base64(HMAC-SHA1(secret, user))), so no long-lived TURN password reaches a browser.
 */
export function iceServers(network: Config['network'], nowMs: number): IceServer[] {
  const stun = network.iceServers.filter((u) => u.startsWith('stun'));
  const turn = network.iceServers.filter((u) => u.startsWith('turn'));
  const out: IceServer[] = [];
  if (stun.length > 0) out.push({ urls: stun });
  if (turn.length > 0) {
    if (network.turnSecret === undefined) {
      out.push({ urls: turn });
    } else {
      const username = `${Math.floor(nowMs / 1000) + TURN_CREDENTIAL_SECONDS}:chorus`;
      const credential = createHmac('sha1', network.turnSecret).update(username).digest('base64');
      out.push({ urls: turn, username, credential });
    }
  }
  return out;
}

/** `GET /ice-servers`: what the pages put in `new RTCPeerConnection({ iceServers })`. */
export function mountIceServersRoute(app: FastifyInstance, network: Config['network']): void {
  app.get('/ice-servers', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    return { iceServers: iceServers(network, Date.now()) };
  });
}
