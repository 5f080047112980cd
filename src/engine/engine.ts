import type { Logger } from 'pino';
import type { Ports } from '../ports/ports.js';
import { StreamRegistry } from '../media/stream/stream-registry.js';
import type { CacheMode } from '../media/stream/gop-cache.js';
import type { FanOutPolicy } from '../media/stream/stream-sink.js';
import type { WebRtcSettings } from '../media/webrtc/peer-config.js';
import { Sfu } from '../media/webrtc/sfu.js';
import { AudioHub, type AudioHubOptions } from '../media/audio/audio-hub.js';
import { IdentityRegistry } from '../core/identity-registry.js';
import { RoomRegistry } from '../core/room-registry.js';
import { RoomDirectory } from '../core/room-directory.js';
import { RoomSecrets } from '../core/room-secrets.js';
import { Presence } from '../core/presence.js';
import { BitePublisher } from '../core/bite-publisher.js';

/**
 * The engine: domain services built on the ports. Surfaces ask it for what they need by
 * namespace (each surface keeps its own users), and never see the ports' implementations.
 */
export interface EngineOptions {
  stream: { cacheBytes: number; cacheMode?: CacheMode; policy: FanOutPolicy };
  webrtc: WebRtcSettings;
  audio: AudioHubOptions;
}

export class Engine {
  /** Live-stream channels of this node (binary fan-out). */
  readonly streams: StreamRegistry;
  /** Rooms of every kind on this node (conferences, calls, group rooms, conversations). */
  readonly rooms: RoomRegistry;
  /** The SFU that carries conference media (and Beep's voice legs). */
  readonly sfu: Sfu;
  /** Audio mixers of calls and rooms (VOIP now; bites and recording later). */
  readonly audio: AudioHub;
  /** Where surfaces publish derived media (audio bites); it owns the sink port. */
  readonly bites: BitePublisher;
  private readonly presences = new Map<string, Presence>();
  private readonly identityRegistries = new Map<string, IdentityRegistry>();
  private readonly directories = new Map<string, RoomDirectory>();
  private readonly secrets = new Map<string, RoomSecrets>();

  constructor(
    /** The ports, for surfaces whose live state is owned per node and reached over the bus (VOIP calls). */
    readonly ports: Ports,
    private readonly log: Logger,
    options: EngineOptions,
  ) {
    this.streams = new StreamRegistry(
      options.stream.cacheBytes,
      options.stream.policy,
      options.stream.cacheMode,
    );
    this.rooms = new RoomRegistry(log.child({ component: 'rooms' }));
    this.sfu = new Sfu(options.webrtc, log.child({ component: 'sfu' }), ports);
    this.audio = new AudioHub(options.audio, log.child({ component: 'audio' }));
    this.bites = new BitePublisher(ports.sink);
  }

  presence(namespace: string): Presence {
    let p = this.presences.get(namespace);
    if (!p) {
      p = new Presence(
        this.ports.bus,
        `chorus.presence.${namespace}`,
        this.log.child({ presence: namespace }),
      );
      this.presences.set(namespace, p);
    }
    return p;
  }

  identities(namespace: string): IdentityRegistry {
    let r = this.identityRegistries.get(namespace);
    if (!r) {
      r = new IdentityRegistry(this.ports.store, namespace);
      this.identityRegistries.set(namespace, r);
    }
    return r;
  }

  /** Durable room records of one surface (each surface keeps its own rooms). */
  roomDirectory(namespace: string): RoomDirectory {
    let d = this.directories.get(namespace);
    if (!d) {
      d = new RoomDirectory(
        this.ports.store,
        this.ports.bus,
        namespace,
        this.log.child({ directory: namespace }),
      );
      this.directories.set(namespace, d);
    }
    return d;
  }

  /** Admin and participant keys of one surface's rooms (rooms that are secured). */
  roomSecrets(namespace: string): RoomSecrets {
    let s = this.secrets.get(namespace);
    if (!s) {
      s = new RoomSecrets(this.ports.store, namespace);
      this.secrets.set(namespace, s);
    }
    return s;
  }

  close(): void {
    this.sfu.close();
    this.audio.closeAll();
    for (const p of this.presences.values()) p.close();
  }
}
