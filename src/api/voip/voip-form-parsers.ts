import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { BusboyHeaders, BusboyInstance } from '@fastify/busboy';
import { createRequire } from 'node:module';
import { ChorusError } from '../../core/errors.js';
import { fromFastifyError } from '../surface-error-handler.js';
import { loadOnce } from '../../lib/load-once.js';

/** Bounds of a form: as many fields as any client sends, each as long as any sends. */
export const FORM_LIMITS = { fields: 50, fieldSize: 64 * 1024, files: 10, parts: 60 } as const;

/**
 * Forms as Go's FormValue reads them: urlencoded or multipart bodies. Of a multipart body
 * only the fields are kept; file parts are read and dropped (Go parses them to a temporary
 * store and FormValue ignores them), never left unread: an unread part stalls the parser
 * and the request would never be answered. More fields, files or parts than FORM_LIMITS,
 * a field longer than its limit or a body over the route's body limit: 413. A malformed
 * body: 400. Either way the answer comes at once.
 */
export function addFormParsers(app: FastifyInstance): void {
  // Fastify closes the connection after a parser's error ("the client may send more"), and
  // a client still sending then gets EPIPE instead of the answer (Node 24's fetch reports
  // that, not the 413). A refused form whose declared length is within the route's limit
  // is read to its end and dropped instead, and the connection stays open for the answer.
  const draining = new WeakSet<IncomingMessage>();
  app.addHook('onSend', async (request, reply) => {
    if (draining.has(request.raw)) reply.removeHeader('connection');
  });
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: FORM_LIMITS.fieldSize },
    (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    },
  );
  app.addContentTypeParser('multipart/form-data', (request, payload, done) => {
    const bodyLimit = request.routeOptions.bodyLimit ?? 1 << 20;
    const fields: Record<string, string> = {};
    let settled = false;
    let parser: BusboyInstance | undefined;
    const finish = (err: ChorusError | null): void => {
      if (settled) return;
      settled = true;
      payload.off('data', count);
      if (err) {
        // Stop feeding the parser and discard the rest (the request deadline bounds it).
        if (parser) payload.unpipe(parser);
        payload.resume();
        if (received <= bodyLimit) {
          // Read on to the end, up to twice the route's limit (past that the socket goes):
          // a form refused for its parts may well be a little over the limit.
          draining.add(request.raw);
          payload.on('data', count);
        }
        done(err, undefined);
      } else {
        done(null, fields);
      }
    };
    let received = 0;
    const count = (chunk: Buffer): void => {
      received += chunk.length;
      if (!settled) {
        if (received > bodyLimit) finish(new ChorusError('too_large', `form over ${bodyLimit} bytes`));
      } else if (received > 2 * bodyLimit) {
        request.raw.destroy(); // a refused form that keeps on coming
      }
    };
    try {
      parser = new (busboy())({
        headers: request.headers as BusboyHeaders,
        limits: { ...FORM_LIMITS, headerPairs: 20 },
      });
    } catch (err) {
      finish(new ChorusError('invalid_argument', (err as Error).message));
      return;
    }
    parser.on('field', (name: string, value: string, _nameTruncated: boolean, truncated: boolean) => {
      if (truncated) finish(new ChorusError('too_large', `form field over ${FORM_LIMITS.fieldSize} bytes`));
      else fields[name] = value;
    });
    parser.on('file', (_name: string, file: NodeJS.ReadableStream) => {
      file.on('error', () => undefined);
      file.resume();
    });
    const tooMany = (what: string) => () => finish(new ChorusError('too_large', `too many form ${what}`));
    parser.on('fieldsLimit', tooMany('fields'));
    parser.on('filesLimit', tooMany('files'));
    parser.on('partsLimit', tooMany('parts'));
    parser.on('error', (err: Error) => finish(new ChorusError('invalid_argument', err.message)));
    parser.on('finish', () => finish(null));
    // A body that fails (client gone, request deadline's 408) fails the parse.
    payload.on('error', (err: Error) =>
      finish(fromFastifyError(err) ?? new ChorusError('invalid_argument', err.message)),
    );
    payload.on('data', count);
    payload.pipe(parser);
  });
}

/** @fastify/busboy, required with the first multipart form: an idle server need not hold it (#17.2). */
const busboy = loadOnce(
  () => (createRequire(import.meta.url)('@fastify/busboy') as typeof import('@fastify/busboy')).Busboy,
);
