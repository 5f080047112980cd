import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

const ALL_METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS'] as const;
export type Method = (typeof ALL_METHODS)[number];

/**
 * A route as the original had it: `methods` run `handler`, and any other method (the
 * CORS preflight too) gets an empty 200.
 */
export function seedRoute(
  app: FastifyInstance,
  url: string,
  methods: Method[],
  handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>,
): void {
  app.route({ method: methods, url, handler });
  const others = ALL_METHODS.filter(
    (m) => !methods.includes(m) && !(m === 'HEAD' && methods.includes('GET')),
  );
  if (others.length > 0)
    app.route({ method: others, url, handler: async (_req, reply) => reply.code(200).send('') });
}
