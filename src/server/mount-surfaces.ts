import type { FastifyInstance } from 'fastify';
import type { SurfaceContext } from '../api/surface-context.js';
import type { Surface } from '../api/surfaces.js';
import type { Readiness } from './readiness.js';
import { releaseOptimizingCompilers } from '../lib/optimizing-compilers.js';
import { releaseYoungGeneration } from '../lib/young-generation.js';
import { mountWeb } from './web-assets.js';
import { disabledWebPages } from './web-pages.js';
import type { WebSocketPayloadLimits } from './websocket-payload-limits.js';

/**
 * Mounts each enabled surface in its own scope (ready once mounted), then the web pages
 * of the surfaces that are on. The last step of building the server: from here V8 may
 * grow the young generation again (lib/young-generation.ts) and optimize what gets hot
 * (lib/optimizing-compilers.ts).
 */
export async function mountSurfaces(
  app: FastifyInstance,
  enabled: readonly Surface[],
  ctx: SurfaceContext,
  payloadLimits: WebSocketPayloadLimits,
  readiness: Readiness,
): Promise<void> {
  const { config, log } = ctx;
  for (const surface of enabled) {
    readiness.expect(surface.name);
    // A scope per surface, only so its WebSocket upgrades carry its own message limit.
    const wsLimit = surface.maxWebSocketMessage(config);
    await app.register(async (scope) => {
      scope.addHook('onRequest', (request, _reply, done) => {
        if (request.ws) payloadLimits.set(request.raw, wsLimit);
        done();
      });
      await surface.mount(scope, ctx);
    });
    readiness.set(surface.name, true);
    log.info({ surface: surface.name }, 'surface mounted');
  }
  if (config.web.enabled) {
    await mountWeb(app, log, disabledWebPages(config));
  }
  releaseYoungGeneration();
  releaseOptimizingCompilers();
}
