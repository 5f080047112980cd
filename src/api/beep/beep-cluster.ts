import type { Logger } from 'pino';
import { z } from 'zod';
import { NoRespondersError, type Bus, type BusMessage, type BusSubscription } from '../../ports/bus/bus.js';
import type { Membership, NodeInfo } from '../../ports/membership/membership.js';
import type { Store } from '../../ports/store/store.js';
import { ThrottledLog } from '../../lib/throttled-log.js';
import { askEveryNode, nodeSubject } from '../ask-every-node.js';
import { busJson, readBusJson } from '../bus-json.js';
import type { BeepConversations } from './beep-conversations.js';
import type { Claim } from './beep-identity.js';
import { BeepUserBook, sameHolder, type Holder } from './beep-user-book.js';

/** How long a join waits for a node holding the user's connections, and a view for each node. */
const NODE_TIMEOUT_MS = 5000;
/** A user this node no longer holds, which the store could not be told (NATS away): tried again. */
const LEAVE_RETRY_MS = 5000;
const LEAVE_ATTEMPTS = 60;

const ID = z.string().min(1).max(256);
/** What one node asks another about a user: re-read their record, or drop a replaced client. */
const USER_OP = z.discriminatedUnion('op', [
  z.object({ op: z.literal('sync'), userid: ID }),
  z.object({ op: z.literal('replace'), userid: ID, clientid: ID, instance: z.string().max(256) }),
]);
type UserOp = z.infer<typeof USER_OP>;
const MEMBERS_QUESTION = z.object({ conversation: ID });
const MEMBERS_ANSWER = z.object({ members: z.number().int().min(0) });

/**
 * Beep across nodes. A user's connections (one per client) live on the nodes that took
 * their `/connect`; the user's one conversation is in the store (`BeepUserBook`), with
 * the nodes holding their connections. A `/join` on any node writes the conversation,
 * then asks each holder (`chorus.node.<id>.beep.user`) to re-read the record and move
 * its connections; it answers once they have. Each node applies one user's changes in
 * order, always from the record, so racing joins on different nodes end where the store
 * ended. Media stays on each node (conversations are per node rooms until "Cluster, part
 * 2"), and bites are published by the node holding the speaker's connection.
 */
export class BeepCluster {
  private readonly book: BeepUserBook;
  private readonly self: Holder;
  private readonly subs: BusSubscription[] = [];
  private readonly offGone: () => void;
  /** One user's changes on this node run one after another. */
  private readonly queues = new Map<string, Promise<void>>();
  private readonly busLog: ThrottledLog;
  private readonly retries = new Set<NodeJS.Timeout>();

  constructor(
    private readonly bus: Bus,
    store: Store,
    private readonly membership: Membership,
    private readonly conversations: BeepConversations,
    private readonly log: Logger,
  ) {
    this.book = new BeepUserBook(store);
    const selfId = membership.selfId;
    const instance = membership.nodes().find((n) => n.id === selfId)?.instance ?? '';
    this.self = { node: selfId, instance };
    this.busLog = new ThrottledLog(log);
    this.subs.push(
      bus.subscribe(nodeSubject(selfId, 'beep.user'), (m) => this.onUserOp(m)),
      bus.subscribe(nodeSubject(selfId, 'beep.members'), (m) => this.onMembers(m)),
    );
    this.offGone = membership.on('nodeGone', (info) => this.nodeGone(info));
    conversations.setUserListener({
      connected: (claim) => this.connected(claim),
      allGone: (userid) => this.allGone(userid),
    });
  }

  /** Forgets, in the background, what an earlier process under this node id held (it crashed). */
  start(): void {
    this.sweep((h) => h.node === this.self.node && h.instance !== this.self.instance).catch((err: unknown) =>
      this.log.warn({ err }, 'beep: could not clear the users held by an earlier run of this node'),
    );
  }

  /** Puts the user, on every node holding one of their connections, in `conversation`. */
  async join(userid: string, conversation: string): Promise<void> {
    const holders = await this.book.setConversation(userid, conversation);
    // This node too, listed or not: the join always reaches the connections it sees.
    const others = holders.filter((h) => h.node !== this.self.node);
    await Promise.all([this.sync(userid), ...others.map((h) => this.tell(h, { op: 'sync', userid }))]);
    this.log.info({ user: userid, conversation, nodes: others.length + 1 }, 'beep: joined conversation');
  }

  /** Members of a conversation on every node (the sum of each node's own). */
  async members(conversation: string): Promise<number> {
    const nodes = this.membership.nodes().map((n) => n.id);
    const { answers } = await askEveryNode(
      this.bus,
      nodes,
      'beep.members',
      { conversation },
      MEMBERS_ANSWER,
      { timeoutMs: NODE_TIMEOUT_MS, surface: 'beep', log: this.busLog },
    );
    let n = 0;
    for (const a of answers.values()) n += a.members;
    return n;
  }

  close(): void {
    for (const s of this.subs) s.unsubscribe();
    this.offGone();
    for (const t of this.retries) clearTimeout(t);
    this.retries.clear();
  }

  /** A connection arrived here: this node holds the user; it enters their conversation. */
  private connected(claim: Claim): void {
    this.background(claim.userid, async () => {
      const user = await this.book.addHolder(claim.userid, this.self);
      if (user.conversation) this.conversations.place(claim.userid, user.conversation);
      // A client's new connection replaces its old one, wherever that is.
      for (const h of user.holders) {
        if (sameHolder(h, this.self)) continue;
        void this.tell(h, {
          op: 'replace',
          userid: claim.userid,
          clientid: claim.clientid,
          instance: this.self.instance,
        });
      }
    });
  }

  /** The user's last connection here closed: struck from their record (again later while the store is away). */
  private allGone(userid: string, attempt = 0): void {
    this.queue(userid, async () => {
      // A connection that arrived since holds the user again.
      if (!this.conversations.holds(userid))
        await this.book.removeHolders(userid, (h) => sameHolder(h, this.self));
    }).catch(() => {
      if (attempt >= LEAVE_ATTEMPTS) return;
      const timer = setTimeout(() => {
        this.retries.delete(timer);
        this.allGone(userid, attempt + 1);
      }, LEAVE_RETRY_MS);
      timer.unref();
      this.retries.add(timer);
    });
  }

  private sync(userid: string): Promise<void> {
    return this.queue(userid, async () => {
      const conversation = (await this.book.get(userid))?.conversation;
      if (conversation) this.conversations.place(userid, conversation);
    });
  }

  /** Asks a holder to act; one that has gone is struck from the user's record. */
  private async tell(holder: Holder, op: UserOp): Promise<void> {
    try {
      await this.bus.request(nodeSubject(holder.node, 'beep.user'), busJson(op), {
        timeoutMs: NODE_TIMEOUT_MS,
      });
    } catch (err) {
      if (err instanceof NoRespondersError) {
        this.log.info({ node: holder.node, user: op.userid }, 'beep: a node holding the user has gone');
        await this.book.removeHolders(op.userid, (h) => sameHolder(h, holder));
        return;
      }
      this.log.warn(
        { err, node: holder.node, user: op.userid, op: op.op },
        'beep: a node holding the user did not answer',
      );
    }
  }

  private onUserOp(msg: BusMessage): void {
    const op = readBusJson(USER_OP, msg.data, { surface: 'beep', subject: msg.subject }, this.busLog);
    if (!op) return;
    if (op.op === 'replace') {
      if (op.instance !== this.self.instance) this.conversations.drop(op.userid, op.clientid);
      msg.respond?.('1');
      return;
    }
    this.sync(op.userid).then(
      () => msg.respond?.('1'),
      (err: unknown) => this.log.warn({ err, user: op.userid }, 'beep: could not read the user to move them'),
    );
  }

  private onMembers(msg: BusMessage): void {
    const q = readBusJson(MEMBERS_QUESTION, msg.data, { surface: 'beep', subject: msg.subject }, this.busLog);
    if (!q) return;
    msg.respond?.(busJson({ members: this.conversations.members(q.conversation) }));
  }

  private nodeGone(info: NodeInfo): void {
    void this.sweep((h) => h.node === info.id && h.instance === info.instance).catch((err: unknown) =>
      this.log.warn({ err, node: info.id }, 'beep: could not clear the users of a node that has gone'),
    );
  }

  private async sweep(gone: (h: Holder) => boolean): Promise<void> {
    const users = await this.book.usersHeldBy(gone);
    for (const userid of users) await this.queue(userid, () => this.book.removeHolders(userid, gone));
    if (users.length > 0)
      this.log.info({ users: users.length }, 'beep: cleared the users of a node that has gone');
  }

  /** `queue` for callers that do not wait: the failure is logged there. */
  private background(userid: string, task: () => Promise<void>): void {
    this.queue(userid, task).catch(() => undefined);
  }

  /** Runs `task` after the user's earlier changes on this node; a failure is logged, not thrown to them. */
  private queue(userid: string, task: () => Promise<void>): Promise<void> {
    const before = this.queues.get(userid) ?? Promise.resolve();
    const run = before.then(task);
    const tail = run.catch((err: unknown) =>
      this.log.warn({ err, user: userid }, 'beep: user change failed'),
    );
    this.queues.set(userid, tail);
    void tail.then(() => {
      if (this.queues.get(userid) === tail) this.queues.delete(userid);
    });
    return run;
  }
}
