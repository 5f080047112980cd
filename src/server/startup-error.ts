/**
 * A start-up failure the operator fixes by changing a setting or the machine (a port in
 * use, an unusable data directory). `main` prints its message as one line and exits 2,
 * as it does for configuration errors, instead of a stack.
 */
export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartupError';
  }
}

/** Node's socket errors as an operator reads them. */
const REASONS: Record<string, string> = {
  EADDRINUSE: 'the port is already in use',
  EACCES: 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)',
  EADDRNOTAVAIL: 'this machine has no such address',
  ENOTFOUND: 'the address does not resolve',
  EAI_AGAIN: 'the address does not resolve',
};

/** One line for an error (a `cause` chain or a stack would be noise here). */
export function reasonOf(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const known = code === undefined ? undefined : REASONS[code];
  if (known) return `${known} (${code})`;
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0]!;
}

/**
 * Binds a listener; a failure becomes a StartupError naming the listener, the address
 * and the settings that choose it.
 */
export async function listenOrExplain(
  what: string,
  host: string,
  port: number,
  settings: string,
  listen: () => Promise<unknown>,
): Promise<void> {
  try {
    await listen();
  } catch (err) {
    const shown = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    throw new StartupError(`cannot listen for ${what} on ${shown}: ${reasonOf(err)}; set ${settings}`, {
      cause: err,
    });
  }
}
