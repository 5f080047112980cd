import type { Logger } from 'pino';
import { TypedEmitter } from '../../lib/typed-emitter.js';
import { subjectToken, type Bus, type BusSubscription } from '../bus/bus.js';
import type { LocalDetails, Membership, MembershipEvents, NodeInfo } from './membership.js';
import { pingSubject } from './membership.js';
import { localInfo, withDetails } from './self-info.js';

/**
 * One node: a cluster of itself, never gone. It still answers pings on the bus, so the
 * bus latency metric and anything that asks "is node X there?" work the same way.
 */
export class LocalMembership implements Membership {
  private readonly events: TypedEmitter<MembershipEvents>;
  private info: NodeInfo;
  private readonly pings: BusSubscription;
  private details: LocalDetails = {};

  constructor(
    readonly selfId: string,
    bus: Bus,
    log: Logger,
  ) {
    this.events = new TypedEmitter(log);
    this.info = localInfo(selfId);
    this.pings = bus.subscribe(pingSubject(subjectToken(selfId)), (msg) => msg.respond?.(this.info.instance));
  }

  nodes(): NodeInfo[] {
    this.info = withDetails(this.info, this.details);
    return [this.info];
  }

  isAlive(nodeId: string): boolean {
    return nodeId === this.selfId;
  }

  heardMsAgo(nodeId: string): number | undefined {
    return nodeId === this.selfId ? 0 : undefined;
  }

  on<K extends keyof MembershipEvents>(event: K, fn: (e: MembershipEvents[K]) => void): () => void {
    return this.events.on(event, fn);
  }

  describe(details: LocalDetails): void {
    this.details = { ...this.details, ...details };
  }

  close(): Promise<void> {
    this.pings.unsubscribe();
    return Promise.resolve();
  }
}
