import type { Membership } from '../../ports/membership/membership.js';

/** A node as VOIP records name it: its id and the process instance that holds the state. */
export interface NodeRef {
  readonly id: string;
  readonly instance: string;
}

/**
 * What the VOIP surface needs of cluster membership: this node (named in the store
 * records of the calls and rooms it owns), whether an owner named there is still alive,
 * and word when a node's instance is gone (its calls end, its rooms are forgotten). A
 * record names the instance too: a node restarted under the same id holds none of what
 * its previous instance held.
 */
export interface VoipNode {
  readonly self: NodeRef;
  isAlive(nodeId: string): boolean;
  onNodeGone(listener: (node: NodeRef) => void): void;
}

export function voipNode(membership: Membership): VoipNode {
  const me = membership.nodes().find((n) => n.id === membership.selfId);
  return {
    self: { id: membership.selfId, instance: me?.instance ?? membership.selfId },
    isAlive: (id) => membership.isAlive(id),
    onNodeGone: (listener) =>
      void membership.on('nodeGone', (n) => listener({ id: n.id, instance: n.instance })),
  };
}
