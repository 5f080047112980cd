import type { Logger } from 'pino';
import { ChorusError } from '../../core/errors.js';

/**
 * backend-permissions: `GET {host}/user/{userid}/conversation/{id}`. 2xx allows;
 * 401/403/404 refuse (401); anything else, a timeout or no answer is the service's
 * failure (502/503), never a silent allow (the original allowed unless the network
 * failed).
 */
export class BeepPermissions {
  constructor(
    private readonly host: string,
    private readonly timeoutMs: number,
    private readonly log: Logger,
  ) {}

  async check(userid: string, conversation: string): Promise<void> {
    const url = new URL(
      `/user/${encodeURIComponent(userid)}/conversation/${encodeURIComponent(conversation)}`,
      this.host,
    );
    let status: number;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.timeoutMs) });
      status = res.status;
      await res.body?.cancel();
    } catch (err) {
      this.log.warn({ err, conversation }, 'permissions service unreachable');
      throw new ChorusError('unavailable', 'permissions service unreachable');
    }
    if (status >= 200 && status < 300) return;
    if (status === 401 || status === 403 || status === 404) {
      // A 401, as the original answered every refusal.
      throw new ChorusError('unauthenticated', 'not allowed to join this conversation');
    }
    this.log.warn({ status, conversation }, 'permissions service failed');
    throw new ChorusError('upstream_failed', `permissions service failed (${status})`);
  }
}
