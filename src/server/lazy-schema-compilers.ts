import { createRequire } from 'node:module';
import type { FastifyServerOptions } from 'fastify';

type CompilersFactory = NonNullable<
  NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']
>;
type Factory = (...args: unknown[]) => unknown;

// Fastify's own, resolved next to fastify (they are its dependencies, not ours).
const fromFastify = createRequire(createRequire(import.meta.url).resolve('fastify'));

/** The factory `selector()` makes, made on the first call and kept (it caches per schema set). */
function onFirstUse(selector: string): Factory {
  let factory: Factory | undefined;
  return (...args) => {
    factory ??= (fromFastify(selector) as () => Factory)();
    return factory(...args);
  };
}

/**
 * Fastify's validator (ajv) and serializer (fast-json-stringify) compilers, loaded on the
 * first route that declares a JSON schema instead of when the app is built. Chorus's
 * routes validate with zod, so an idle server never loads them: about 5 MiB of heap and
 * 150 ms of start-up (bench/idle, BENCHMARKS.md). Same compilers, same default options.
 */
export function lazySchemaCompilers(): CompilersFactory {
  return {
    buildValidator: onFirstUse('@fastify/ajv-compiler') as NonNullable<CompilersFactory['buildValidator']>,
    buildSerializer: onFirstUse('@fastify/fast-json-stringify-compiler') as NonNullable<
      CompilersFactory['buildSerializer']
    >,
  };
}
