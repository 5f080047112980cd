import type { Logger } from 'pino';
import type { Ports } from '../ports/create-ports.js';
import { IdentityRegistry } from './identity-registry.js';
import { Presence } from './presence.js';

/**
 * The engine: domain services built on the ports. Surfaces ask it for what they need by
 * namespace (each surface keeps its own users), and never see the ports' implementations.
 */
export class Engine {
  private readonly presences = new Map<string, Presence>();
  private readonly identityRegistries = new Map<string, IdentityRegistry>();

  constructor(
    private readonly ports: Ports,
    private readonly log: Logger,
  ) {}

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

  close(): void {
    for (const p of this.presences.values()) p.close();
  }
}
