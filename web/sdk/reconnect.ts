/**
 * What every page does when the server goes away (a restart, a network blip): say
 * "reconnecting..." and ask again with backoff until the server answers, then let the
 * page rejoin what it had. The server is asked on /healthz rather than by retrying the
 * page's own request, so a refusal once it is back (a lost room, a lost session) is told
 * apart from "not there yet" and said plainly instead of retried forever.
 */

/** Delay before the attempt `n` (0-based): 0.5 s doubling to 8 s, with jitter so pages do not stampede. */
export function backoffMs(n: number): number {
  const base = Math.min(500 * 2 ** n, 8000);
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

/** True when the server answers /healthz now. */
export async function serverUp(): Promise<boolean> {
  try {
    const res = await fetch('/healthz', { cache: 'no-store' });
    return res.ok;
  } catch {
    return false;
  }
}

/** Thrown by a page's rejoin when the server is not reachable yet (a socket that did not open): wait more. */
export class ServerAway extends Error {}

export interface Reconnector {
  /** Starts waiting for the server (no-op when already waiting). */
  start(): void;
  /** Stops waiting (the user left the room, hung up). */
  cancel(): void;
  readonly active: boolean;
}

/**
 * Waits for the server with backoff, calling `status` with what to show meanwhile, then
 * `rejoin` once it answers. `rejoin` throwing (the server answered but refused) ends the
 * wait with `lost` and the error's message; a network failure in `rejoin` waits again.
 */
export function reconnector(handlers: {
  status(text: string): void;
  rejoin(): Promise<void>;
  lost(why: string): void;
}): Reconnector {
  let running = false;
  let generation = 0;
  const sleep = (ms: number): Promise<void> => new Promise((r) => window.setTimeout(r, ms));
  const run = async (gen: number): Promise<void> => {
    for (let n = 0; gen === generation; n++) {
      if (await serverUp()) {
        if (gen !== generation) return;
        try {
          await handlers.rejoin();
          if (gen === generation) running = false;
          return;
        } catch (err) {
          if (gen !== generation) return;
          // Still a network failure: the server went away again, keep waiting.
          if (!(err instanceof TypeError) && !(err instanceof ServerAway)) {
            running = false;
            handlers.lost(err instanceof Error ? err.message : String(err));
            return;
          }
        }
      }
      const wait = backoffMs(n);
      handlers.status(`reconnecting... (server unreachable, next try in ${Math.ceil(wait / 1000)} s)`);
      await sleep(wait);
    }
  };
  return {
    start() {
      if (running) return;
      running = true;
      handlers.status('reconnecting...');
      const gen = ++generation;
      void run(gen);
    },
    cancel() {
      running = false;
      generation++;
    },
    get active() {
      return running;
    },
  };
}
