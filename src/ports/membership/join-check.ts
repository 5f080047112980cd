import type { KV } from '@nats-io/kv';
import { BusTimeoutError, NoRespondersError, subjectToken, type Bus } from '../bus/bus.js';
import { isWrongRevision, natsReason } from '../nats/nats-errors.js';
import { PortStartError } from '../port-errors.js';
import type { NodeInfo } from './membership.js';
import { pingSubject } from './membership.js';
import { parseNodeInfo } from './node-info.js';

const PING_TIMEOUT_MS = 1500;

/**
 * Whether the node with this id answers on the bus now. A NATS subscription dies with
 * its connection, so a process that was killed (even with SIGKILL) has no responder:
 * its entry may still be in the bucket for seconds, but this tells it is dead at once.
 * No answer in time (a live but stalled node) counts as alive: refusing is the safe side.
 */
export async function answersPing(bus: Bus, id: string): Promise<boolean> {
  try {
    await bus.request(pingSubject(subjectToken(id)), '', { timeoutMs: PING_TIMEOUT_MS });
    return true;
  } catch (err) {
    if (err instanceof NoRespondersError) return false;
    if (err instanceof BusTimeoutError) return true;
    throw err;
  }
}

/**
 * Checks the bucket before this node announces itself, and writes its first entry.
 * Refuses (PortStartError: one line, exit 2) when another live node holds this id, or
 * when a live node speaks another wire protocol: a node that misreads the others'
 * subjects or records would corrupt shared state, so it must not join. Entries of dead
 * nodes (no ping answer) are ignored, so a node killed and restarted with its id rejoins
 * at once. The first write is a create or a compare-and-set on the revision read here,
 * so of two processes starting with one id at the same instant only one gets in.
 */
export async function checkJoin(
  kv: KV,
  /** The bucket's keys (kv-key-listing.ts: kv.keys() can wait 30 s on a node leaving meanwhile). */
  listKeys: () => Promise<string[]>,
  bus: Bus,
  self: NodeInfo,
): Promise<void> {
  let ownRevision: number | undefined;
  for (const key of await listKeys()) {
    const entry = await kv.get(key);
    if (!entry || entry.operation !== 'PUT') continue;
    const info = parseNodeInfo(entry.value);
    if (key === self.id) {
      ownRevision = entry.revision;
      if (await answersPing(bus, self.id)) {
        throw new PortStartError(
          `node id ${self.id} is already held by a live node` +
            `${info?.httpUrl ? ` (${info.httpUrl})` : ''}; give each node its own CLUSTER_NODE_ID`,
        );
      }
      continue;
    }
    if (info && info.protocol !== self.protocol && (await answersPing(bus, info.id))) {
      throw new PortStartError(
        `the cluster speaks wire protocol ${info.protocol} (node ${info.id}, Chorus ${info.version}) ` +
          `but this node speaks ${self.protocol} (Chorus ${self.version}); run one Chorus release on every node`,
      );
    }
  }
  const data = JSON.stringify(self);
  let written: boolean;
  try {
    if (ownRevision === undefined) await kv.create(self.id, data);
    else await kv.update(self.id, data, ownRevision);
    written = true;
  } catch (err) {
    // Only a lost race means another node took the id; anything else (NATS slow or gone
    // during start-up) is said as it is, not blamed on a duplicate id.
    if (!isWrongRevision(err)) {
      throw new PortStartError(`cannot announce node ${self.id} in the cluster: ${natsReason(err)}`, {
        cause: err,
      });
    }
    written = false;
  }
  if (!written) {
    throw new PortStartError(
      `node id ${self.id} was taken by another node starting at the same time; give each node its own CLUSTER_NODE_ID`,
    );
  }
}
