import type { FastifyInstance } from 'fastify';
import { Busboy, type BusboyHeaders, type BusboyInstance } from '@fastify/busboy';

/** Forms as Go's FormValue reads them: urlencoded or multipart bodies (fields only). */
export function addFormParsers(app: FastifyInstance): void {
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 64 * 1024 },
    (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    },
  );
  app.addContentTypeParser('multipart/form-data', (request, payload, done) => {
    const fields: Record<string, string> = {};
    let parser: BusboyInstance;
    try {
      parser = new Busboy({
        headers: request.headers as BusboyHeaders,
        limits: { fields: 50, fieldSize: 64 * 1024, files: 0, parts: 60 },
      });
    } catch (err) {
      done(Object.assign(err as Error, { statusCode: 400 }), undefined);
      return;
    }
    parser.on('field', (name: string, value: string) => (fields[name] = value));
    parser.on('file', (_name: string, file: NodeJS.ReadableStream) => file.resume());
    parser.on('error', (err: Error) => done(Object.assign(err, { statusCode: 400 }), undefined));
    parser.on('finish', () => done(null, fields));
    payload.pipe(parser);
  });
}
