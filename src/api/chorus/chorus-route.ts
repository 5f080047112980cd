import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ChorusError } from '../../core/errors.js';
import type { AccessClaims } from './access-token.js';
import type { AccessRule, ChorusAccess } from './chorus-access.js';

/**
 * One native route, declared once: its path, access rule and zod schemas are what the
 * handler is checked against and what `/chorus/v1/openapi.json` is generated from.
 */
export interface ChorusRoute<P = unknown, B = unknown, R = unknown> {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** OpenAPI form, under the API's prefix: `/rooms/{name}`. */
  path: string;
  summary: string;
  access: AccessRule;
  params?: z.ZodType<P>;
  body?: z.ZodType<B>;
  /** The success body; absent: 204 with none. */
  response?: z.ZodType<R>;
  status?: 200 | 201;
  handle(input: { params: P; body: B; claims: AccessClaims }): Promise<R>;
}

/** A route, typed from its schemas (the table of routes holds them type-erased). */
export function route<P, B, R>(r: ChorusRoute<P, B, R>): ChorusRoute {
  return r;
}

function parsed<T>(schema: z.ZodType<T> | undefined, value: unknown, what: string): T {
  if (!schema) return undefined as T;
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const at = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  throw new ChorusError('invalid_argument', `invalid ${what}: ${at}${issue?.message ?? 'malformed'}`);
}

/** Mounts each route on `app`: token checked first (401/403), then params and body (400). */
export function mountRoutes(
  app: FastifyInstance,
  access: ChorusAccess,
  routes: readonly ChorusRoute[],
): void {
  for (const r of routes) {
    app.route({
      method: r.method,
      url: r.path.replace(/\{(\w+)\}/g, ':$1'),
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        const rawRoom = (request.params as Record<string, unknown> | undefined)?.name;
        const claims = await access.check(
          request,
          r.access,
          typeof rawRoom === 'string' ? rawRoom : undefined,
        );
        const params = parsed(r.params, request.params, 'path');
        const body = parsed(r.body, request.body ?? {}, 'body');
        const result = await r.handle({ params, body, claims });
        if (!r.response) return reply.code(204).send();
        return reply.code(r.status ?? 200).send(result);
      },
    });
  }
}

const errorSchema = z.object({
  error: z.object({
    code: z.string().meta({
      description: 'stable: invalid_argument, unauthenticated, forbidden, not_found, conflict, ...',
    }),
    message: z.string(),
  }),
});

const accessText: Record<AccessRule['grant'], string> = {
  roomCreate: 'a token with the `roomCreate` grant',
  roomList: 'a token with the `roomList` grant',
  roomAdmin: 'a token with `roomAdmin` for this room (or for every room: no `room` claim)',
  roomListOrAdmin: 'a token with `roomList`, or `roomAdmin` for this room',
};

const json = (schema: z.ZodType, io: 'input' | 'output') => ({
  'application/json': {
    schema: z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }),
  },
});

/** The OpenAPI 3.1 document of `routes`, generated from their zod schemas. */
export function openApiDocument(prefix: string, version: string, routes: readonly ChorusRoute[]): object {
  const paths: Record<string, Record<string, unknown>> = {};
  const errorResponse = (description: string) => ({ description, content: json(errorSchema, 'output') });
  for (const r of routes) {
    const parameters = r.params
      ? Object.entries(
          (z.toJSONSchema(r.params, { io: 'input' }) as { properties?: Record<string, object> }).properties ??
            {},
        ).map(([name, schema]) => ({ name, in: 'path', required: true, schema }))
      : [];
    const ok = r.response
      ? { [String(r.status ?? 200)]: { description: 'success', content: json(r.response, 'output') } }
      : { '204': { description: 'done' } };
    (paths[prefix + r.path] ??= {})[r.method.toLowerCase()] = {
      summary: r.summary,
      description: `Requires ${accessText[r.access.grant]}.`,
      security: [{ accessToken: [] }],
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(r.body ? { requestBody: { required: true, content: json(r.body, 'input') } } : {}),
      responses: {
        ...ok,
        '400': errorResponse('malformed path or body'),
        '401': errorResponse('no token, or a bad, expired or unknown-key token'),
        '403': errorResponse('the token lacks the grant'),
        '404': errorResponse('no such room or participant'),
        '409': errorResponse('conflict (a room of that name exists)'),
        '503': errorResponse('the cluster store or bus is out of reach'),
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Chorus native API',
      version,
      description:
        'Room service of Chorus. Every call carries `Authorization: Bearer <access token>` (docs/native-api.md).',
    },
    components: {
      securitySchemes: {
        accessToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT (HS256, kid = API key)' },
      },
    },
    paths,
  };
}
