import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.js';
import type { SurfaceContext } from './surface-context.js';
import { signalPlugin } from './signal/signal-plugin.js';
import { streamPlugin } from './stream/stream-plugin.js';
import { blueSkyPlugin } from './bluesky/bluesky-plugin.js';
import { voipPlugin } from './voip/voip-plugin.js';
import { beepPlugin } from './beep/beep-plugin.js';
import { loadResampler } from '../media/audio/resampler.js';
import { SignalQuotas } from './signal/signal-quotas.js';
import { BlueSkyQuotas } from './bluesky/bluesky-quotas.js';

export interface Surface {
  name: string;
  enabled(config: Config): boolean;
  /** Largest WebSocket message the surface accepts (the shared upgrade server's ceiling). */
  maxWebSocketMessage(config: Config): number;
  mount(app: FastifyInstance, ctx: SurfaceContext): Promise<void>;
}

/** Every public surface. Each mounts as an encapsulated Fastify plugin under its prefixes. */
export const surfaces: readonly Surface[] = [
  {
    name: 'signal',
    enabled: (c) => c.signal.enabled,
    maxWebSocketMessage: (c) => c.signal.maxFrameBytes,
    async mount(app, ctx) {
      const log = ctx.log.child({ surface: 'signal' });
      const identities = ctx.engine.identities('signal');
      const presence = ctx.engine.presence('signal');
      const quotas = new SignalQuotas(ctx.config.signal, identities, presence, log);
      app.addHook('onClose', async () => quotas.close());
      for (const prefix of new Set(ctx.config.signal.prefixes)) {
        await app.register(signalPlugin, {
          prefix,
          config: ctx.config.signal,
          identities,
          presence,
          quotas,
          tracker: ctx.tracker,
          heartbeats: ctx.heartbeats,
          adminGuard: ctx.adminGuard,
          log,
        });
      }
    },
  },
  {
    name: 'bluesky',
    enabled: (c) => c.bluesky.enabled,
    maxWebSocketMessage: () => 0,
    async mount(app, ctx) {
      const log = ctx.log.child({ surface: 'bluesky' });
      const directory = ctx.engine.roomDirectory('bluesky');
      const secrets = ctx.engine.roomSecrets('bluesky');
      const quotas = new BlueSkyQuotas(ctx.config.bluesky, directory, secrets, ctx.engine.rooms, log);
      app.addHook('onClose', async () => quotas.close());
      for (const prefix of new Set(ctx.config.bluesky.prefixes)) {
        await app.register(blueSkyPlugin, {
          prefix,
          directory,
          quotas,
          secrets,
          maxSdpBytes: ctx.config.bluesky.maxSdpBytes,
          secureRooms: ctx.config.bluesky.secureRooms,
          rooms: ctx.engine.rooms,
          sfu: ctx.engine.sfu,
          log,
        });
      }
    },
  },
  {
    name: 'voip',
    enabled: (c) => c.voip.enabled,
    maxWebSocketMessage: (c) => c.voip.maxUploadFrameBytes,
    async mount(app, ctx) {
      await loadResampler();
      await app.register(voipPlugin, {
        prefix: ctx.config.voip.prefix,
        config: ctx.config.voip,
        rooms: ctx.engine.rooms,
        audio: ctx.engine.audio,
        ports: ctx.engine.ports,
        tracker: ctx.tracker,
        heartbeats: ctx.heartbeats,
        registry: ctx.metrics.registry,
        log: ctx.log.child({ surface: 'voip' }),
      });
    },
  },
  {
    name: 'beep',
    enabled: (c) => c.beep.enabled,
    maxWebSocketMessage: () => 256 * 1024,
    async mount(app, ctx) {
      await app.register(beepPlugin, {
        prefix: ctx.config.beep.prefix,
        config: ctx.config.beep,
        rooms: ctx.engine.rooms,
        audio: ctx.engine.audio,
        sfu: ctx.engine.sfu,
        bites: ctx.engine.bites,
        bus: ctx.engine.ports.bus,
        store: ctx.engine.ports.store,
        membership: ctx.engine.ports.membership,
        tracker: ctx.tracker,
        registry: ctx.metrics.registry,
        log: ctx.log.child({ surface: 'beep' }),
      });
    },
  },
  {
    name: 'stream',
    enabled: (c) => c.stream.enabled,
    maxWebSocketMessage: (c) => c.stream.maxMessageBytes,
    async mount(app, ctx) {
      await app.register(streamPlugin, {
        prefix: ctx.config.stream.prefix,
        config: ctx.config.stream,
        network: ctx.config.network,
        streams: ctx.engine.streams,
        bus: ctx.engine.ports.bus,
        store: ctx.engine.ports.store,
        membership: ctx.engine.ports.membership,
        tracker: ctx.tracker,
        heartbeats: ctx.heartbeats,
        registry: ctx.metrics.registry,
        log: ctx.log.child({ surface: 'stream' }),
      });
    },
  },
];
