import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import type { Logger } from 'pino';

/** web/dist, built by `npm run build:web` (run by `npm start` and `npm test`). */
export const webDistDir = fileURLToPath(new URL('../../web/dist/', import.meta.url));

/**
 * Serves the bundled pages. One route per file (no wildcard), so the pages never shadow
 * a surface's parametric routes.
 */
export async function mountWeb(
  app: FastifyInstance,
  log: Logger,
  disabledPages: readonly string[],
): Promise<void> {
  if (!existsSync(webDistDir)) {
    log.warn({ dir: webDistDir }, 'browser pages not built: run `npm run build:web`');
    return;
  }
  const blocked = disabledPages.map((p) => `/${p}/`);
  await app.register(fastifyStatic, {
    root: webDistDir,
    prefix: '/',
    wildcard: false,
    redirect: true,
    index: ['index.html'],
    // Pages of disabled surfaces (or a disabled test client) are not served.
    allowedPath: (pathName) => !blocked.some((b) => pathName.startsWith(b) || `${pathName}/` === b),
  });
}
