import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { lazySchemaCompilers } from '../../src/server/lazy-schema-compilers.js';

// Chorus's own routes declare no JSON schema, so the app never loads ajv; a route that does
// (a plugin's, a future one) must still be validated and serialized as Fastify does.
describe('lazySchemaCompilers', () => {
  it('validates a body and serializes a response of a route that declares schemas', async () => {
    const app = Fastify({ schemaController: { compilersFactory: lazySchemaCompilers() } });
    app.post(
      '/echo',
      {
        schema: {
          body: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } },
          response: { 200: { type: 'object', properties: { n: { type: 'integer' } } } },
        },
      },
      async (request) => ({ n: (request.body as { n: number }).n, hidden: 'dropped by the serializer' }),
    );
    try {
      const bad = await app.inject({ method: 'POST', url: '/echo', payload: { n: 'x' } });
      expect(bad.statusCode).toBe(400);
      const good = await app.inject({ method: 'POST', url: '/echo', payload: { n: 7 } });
      expect(good.statusCode).toBe(200);
      expect(good.json()).toEqual({ n: 7 });
    } finally {
      await app.close();
    }
  });
});
