import { readFileSync, statSync } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import type { Logger } from 'pino';

export interface TlsFiles {
  cert: string;
  key: string;
}

export function readTlsFiles(files: TlsFiles): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(files.cert), key: readFileSync(files.key) };
}

/**
 * Watches the certificate and key files and swaps the server's secure context when they
 * change (e.g. after a certbot renewal), without dropping connections.
 */
export function watchTlsFiles(
  server: HttpsServer,
  files: TlsFiles,
  seconds: number,
  log: Logger,
): () => void {
  if (seconds <= 0) return () => undefined;
  const stamp = (): string => {
    try {
      return `${statSync(files.cert).mtimeMs}:${statSync(files.key).mtimeMs}`;
    } catch {
      return 'missing';
    }
  };
  let last = stamp();
  const timer = setInterval(() => {
    const now = stamp();
    if (now === last || now === 'missing') return;
    try {
      server.setSecureContext(readTlsFiles(files));
      last = now;
      log.info({ cert: files.cert }, 'TLS certificate reloaded');
    } catch (err) {
      log.error({ err, cert: files.cert }, 'TLS certificate reload failed; keeping the previous one');
    }
  }, seconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
