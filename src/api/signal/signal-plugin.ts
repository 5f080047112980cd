import type { FastifyPluginAsync, preHandlerAsyncHookHandler } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { HeartbeatScheduler } from '../../lib/heartbeat-scheduler.js';
import type { IdentityRegistry } from '../../core/identity-registry.js';
import type { Presence } from '../../core/presence.js';
import type { SocketTracker, UpgradeShortcutRegistry } from '../surface-context.js';
import { surfaceErrorHandler } from '../surface-error-handler.js';
import { signalAdminRoutes } from './signal-admin-routes.js';
import { signalConnectRoute } from './signal-connect-route.js';
import { signalErrors } from './signal-errors.js';
import type { SignalQuotas } from './signal-quotas.js';
import { signalUserRoutes } from './signal-user-routes.js';

export interface SignalSurfaceOptions {
  config: Config['signal'];
  identities: IdentityRegistry;
  presence: Presence;
  /** Shared by every prefix of the surface, so a second prefix is no second allowance. */
  quotas: SignalQuotas;
  tracker: SocketTracker;
  /** The server's heartbeat wheel: pings each connection, terminates the silent. */
  heartbeats: HeartbeatScheduler;
  /** Where `/v1/connect` takes its upgrades before Fastify's lifecycle. */
  upgrades: UpgradeShortcutRegistry;
  adminGuard: preHandlerAsyncHookHandler;
  log: Logger;
}

/**
 * The Signal Server surface (seed 001). Thin: parses, validates, calls Presence and the
 * IdentityRegistry, formats the original's bodies. One plugin per route group.
 */
export const signalPlugin: FastifyPluginAsync<SignalSurfaceOptions> = async (app, opts) => {
  const { config, identities, presence, quotas, tracker, heartbeats, upgrades, log } = opts;
  // The original answers every unreadable body with this exact 400.
  app.setErrorHandler(surfaceErrorHandler(signalErrors));

  await app.register(signalUserRoutes, { config, identities, quotas });
  await app.register(signalConnectRoute, {
    config,
    identities,
    presence,
    quotas,
    tracker,
    heartbeats,
    upgrades,
    log,
  });
  await app.register(signalAdminRoutes, { presence, adminGuard: opts.adminGuard });
};
