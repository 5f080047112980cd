import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.js';
import type { SurfaceContext } from './surface-context.js';

export interface Surface {
  name: string;
  enabled(config: Config): boolean;
  /** Largest WebSocket message the surface accepts (the shared upgrade server's ceiling). */
  maxWebSocketMessage(config: Config): number;
  /** Loads the surface's modules (only now: a disabled surface costs nothing) and mounts it. */
  mount(app: FastifyInstance, ctx: SurfaceContext): Promise<void>;
}

/**
 * Every public surface. Each mounts as an encapsulated Fastify plugin under its prefixes.
 * Its modules are imported in `mount`, never at the top of this file, so a surface that is
 * turned off is never loaded (its code, its libraries: jose, protobufjs). The heaviest
 * wait for their first use even in a surface that is on: node-datachannel (the first
 * WebRTC leg), the resampler's WASM (the first upload that needs it), the Beep bite
 * schema (the first bite). Each `import()` names a literal path, which lint checks like
 * a static import (eslint-layers.js).
 */
export const surfaces: readonly Surface[] = [
  {
    name: 'signal',
    enabled: (c) => c.signal.enabled,
    maxWebSocketMessage: (c) => c.signal.maxFrameBytes,
    async mount(app, ctx) {
      const [{ signalPlugin }, { SignalQuotas }] = await Promise.all([
        import('./signal/signal-plugin.js'),
        import('./signal/signal-quotas.js'),
      ]);
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
          upgrades: ctx.upgrades,
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
      const [{ blueSkyPlugin }, { BlueSkyQuotas }] = await Promise.all([
        import('./bluesky/bluesky-plugin.js'),
        import('./bluesky/bluesky-quotas.js'),
      ]);
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
      // The resampler's WASM is loaded by the first upload that needs it (preparePcmInput).
      const { voipPlugin } = await import('./voip/voip-plugin.js');
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
      const { beepPlugin } = await import('./beep/beep-plugin.js');
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
      const { streamPlugin } = await import('./stream/stream-plugin.js');
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
  {
    name: 'chorus',
    enabled: (c) => c.chorus.enabled,
    // Native signalling (/chorus/v1/rtc): session descriptions and data messages.
    maxWebSocketMessage: () => 65_536,
    async mount(app, ctx) {
      const { chorusPlugin } = await import('./chorus/chorus-plugin.js');
      await app.register(chorusPlugin, {
        prefix: '/chorus/v1',
        apiKeys: ctx.config.chorus.apiKeys,
        webhookUrls: ctx.config.chorus.webhookUrls,
        registry: ctx.metrics.registry,
        rooms: ctx.engine.rooms,
        bus: ctx.engine.ports.bus,
        store: ctx.engine.ports.store,
        membership: ctx.engine.ports.membership,
        sfu: ctx.engine.sfu,
        trackSocket: (socket) => ctx.tracker.track('chorus', socket),
        heartbeats: ctx.heartbeats,
        log: ctx.log.child({ surface: 'chorus' }),
      });
    },
  },
];
