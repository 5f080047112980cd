import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type send from '@fastify/send';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';

/** web/dist, built by `npm run build:web` (run by `npm start` and `npm test`). */
export const webDistDir = fileURLToPath(new URL('../../web/dist/', import.meta.url));

type Send = typeof send;

/**
 * @fastify/send, what @fastify/static serves files with (ETag, Last-Modified, 304, ranges,
 * content types), resolved next to @fastify/static, whose dependency it is, and loaded
 * with the first page request. @fastify/static itself loads glob and its file-system
 * caches at start, about 3 MiB of an idle server (bench/idle, BENCHMARKS.md), to list a
 * folder these few lines list.
 */
function fileSender(): () => Send {
  let loaded: Send | undefined;
  return () =>
    (loaded ??= createRequire(createRequire(import.meta.url).resolve('@fastify/static'))(
      '@fastify/send',
    ) as Send);
}

/**
 * Serves the bundled pages. One route per file (no wildcard), so the pages never shadow
 * a surface's parametric routes; a folder with an index.html is served at `/<folder>/`,
 * and `/<folder>` redirects there. Pages of disabled surfaces (or a disabled test client)
 * get no route.
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
  const blocked = disabledPages.map((p) => `${p}/`);
  const entries = await readdir(webDistDir, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((e) => e.isFile())
    .map((e) => posix.join(relative(webDistDir, e.parentPath).split(sep).join('/'), e.name))
    .filter((rel) => !blocked.some((b) => rel.startsWith(b)));
  const sender = fileSender();
  const serve = (rel: string) => async (request: FastifyRequest, reply: FastifyReply) => {
    // send() decodes the path it is given; these are our own file names, encoded once.
    const { statusCode, headers, stream, type } = await sender()(request.raw, encodeURI(`/${rel}`), {
      root: webDistDir,
    });
    if (type !== 'file') {
      stream.destroy();
      return reply.callNotFound();
    }
    return reply.code(statusCode).headers(headers).send(stream);
  };
  for (const rel of files) {
    app.get(`/${rel}`, serve(rel));
    const dir = posix.dirname(rel);
    // The root's index would be the front door's route; no page has one.
    if (posix.basename(rel) === 'index.html' && dir !== '.') {
      app.get(`/${dir}/`, serve(rel));
      app.get(`/${dir}`, async (request, reply) => {
        const query = request.raw.url?.indexOf('?') ?? -1;
        return reply.redirect(`/${dir}/${query >= 0 ? request.raw.url!.slice(query) : ''}`, 301);
      });
    }
  }
}
