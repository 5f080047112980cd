import { randomUUID } from 'node:crypto';
import type { Ports } from '../../ports/ports.js';

/** A node as VOIP records name it: its id and the process instance that holds the state. */
export interface NodeRef {
  readonly id: string;
  readonly instance: string;
}

/**
 * What the VOIP surface needs of cluster membership: this node (named in the store
 * records of the calls and rooms it owns), whether an owner named there is still alive,
 * and word when a node's instance is gone (its calls end, its rooms are forgotten).
 */
export interface VoipNode {
  readonly self: NodeRef;
  isAlive(nodeId: string): boolean;
  onNodeGone(listener: (node: NodeRef) => void): void;
}

/** The membership port's shape (ports/membership), as far as VOIP uses it. */
interface MembershipLike {
  readonly selfId: string;
  nodes(): readonly { id: string; instance: string }[];
  isAlive(nodeId: string): boolean;
  on(event: 'nodeGone', listener: (node: { id: string; instance: string }) => void): unknown;
}

/**
 * This node as the membership port sees it. Without one (ports a test built by hand),
 * the node is alone: a random id, every other node taken for alive, none ever gone.
 */
export function voipNode(ports: Ports): VoipNode {
  const membership = (ports as Ports & { membership?: MembershipLike }).membership;
  if (!membership) {
    const id = `voip-${randomUUID()}`;
    return { self: { id, instance: id }, isAlive: () => true, onNodeGone: () => undefined };
  }
  const instance = membership.nodes().find((n) => n.id === membership.selfId)?.instance ?? membership.selfId;
  return {
    self: { id: membership.selfId, instance },
    isAlive: (id) => membership.isAlive(id),
    onNodeGone: (listener) =>
      void membership.on('nodeGone', (n) => listener({ id: n.id, instance: n.instance })),
  };
}
