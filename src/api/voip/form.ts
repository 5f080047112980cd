import type { FastifyRequest } from 'fastify';

/** A request's form: query string merged with an urlencoded or multipart body. */
export type Form = Record<string, string | undefined>;

export function form(request: FastifyRequest): Form {
  const out: Form = {};
  const add = (src: unknown) => {
    if (!src || typeof src !== 'object') return;
    for (const [k, v] of Object.entries(src as Record<string, unknown>)) {
      if (typeof v === 'string') out[k] = v;
      else if (Array.isArray(v) && typeof v[0] === 'string') out[k] = v[0];
    }
  };
  // Go's FormValue prefers the body over the query string.
  add(request.query);
  add(request.body);
  return out;
}

export function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
