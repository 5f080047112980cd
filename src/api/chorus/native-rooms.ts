import type { Logger } from 'pino';
import { z } from 'zod';
import type { RoomRegistry } from '../../core/room-registry.js';
import { asParticipantId } from '../../core/room-types.js';
import { ThrottledLog } from '../../lib/throttled-log.js';
import { subjectToken, type Bus, type BusMessage, type BusSubscription } from '../../ports/bus/bus.js';
import type { Membership } from '../../ports/membership/membership.js';
import type { KvBucket, Store } from '../../ports/store/store.js';
import { askEveryNode, nodeSubject } from '../ask-every-node.js';
import { busJson, readBusJson } from '../bus-json.js';
import { identity, roomName, trackSources } from './access-token.js';

/**
 * Native rooms are the engine's `conference` rooms (the SFU's, shared with Blue Sky): a
 * native room named X is the live conference room X on every node that carries some of it.
 * This record is what the room service adds: it exists from create to delete, whoever is in.
 */
export const roomRecord = z.object({
  name: roomName,
  metadata: z.string().max(65_536),
  /** Most participants at once (0: no limit). */
  maxParticipants: z.number().int().min(0).max(100_000),
  /** Seconds since the epoch. */
  createdAt: z.number().int(),
});
export type RoomRecord = z.infer<typeof roomRecord>;

export const trackInfo = z.object({
  id: z.string(),
  kind: z.enum(['audio', 'video']),
  source: z.enum(trackSources),
  codec: z.string(),
  /** Muted: the SFU forwards none of its media. */
  muted: z.boolean().optional(),
});

export const participantInfo = z.object({
  identity,
  /** The node the participant is connected to. */
  node: z.string(),
  /** Display name and metadata from the participant's token ('' when it has none). */
  name: z.string().max(256).optional(),
  metadata: z.string().max(4096).optional(),
  tracks: z.array(trackInfo),
});
export type ParticipantInfo = z.infer<typeof participantInfo>;

const participantsQuestion = z.object({ room: roomName });
const participantsAnswer = z.object({ participants: z.array(participantInfo).max(100_000) });
const removeQuestion = z.object({ room: roomName, identity, reason: z.string().max(100).optional() });
const muteQuestion = z.object({ room: roomName, identity, track: z.string().max(300), muted: z.boolean() });
const muteAnswer = z.object({ found: z.boolean() });
const removeAnswer = z.object({ removed: z.boolean() });
const closedEvent = z.object({ room: roomName });

/** How long a node has to answer for its share of a room. */
const NODE_TIMEOUT_MS = 2000;
const KIND = 'conference';

/**
 * The room service's rooms across the cluster: records in the store (`chorus-rooms`),
 * participants asked of every node (`chorus.node.<id>.chorus.participants`), removals
 * sent to every node (only the one holding the participant acts), and a delete announced
 * on `chorus.native.room.<name>.closed` so each node closes its live part of the room.
 */
export class NativeRooms {
  private readonly bucket: KvBucket<RoomRecord>;
  private readonly busLog: ThrottledLog;
  private readonly subs: BusSubscription[] = [];
  /** Name and metadata of a local participant (set by the signalling sessions). */
  describe: (room: string, identity: string) => { name: string; metadata: string } = () => ({
    name: '',
    metadata: '',
  });

  constructor(
    store: Store,
    private readonly bus: Bus,
    private readonly membership: Membership,
    private readonly rooms: RoomRegistry,
    private readonly log: Logger,
  ) {
    this.bucket = store.bucket<RoomRecord>('chorus-rooms');
    this.busLog = new ThrottledLog(log, 5);
    const self = membership.selfId;
    this.subs.push(
      bus.subscribe(nodeSubject(self, 'chorus.participants'), (m) =>
        this.guard(m, () => this.answerParticipants(m)),
      ),
      bus.subscribe(nodeSubject(self, 'chorus.remove'), (m) => this.guard(m, () => this.answerRemove(m))),
      bus.subscribe(nodeSubject(self, 'chorus.mute'), (m) => this.guard(m, () => this.answerMute(m))),
      bus.subscribe('chorus.native.room.*.closed', (m) => this.guard(m, () => this.onClosed(m))),
    );
  }

  /** False when a room of that name exists (the store's create decides between racing nodes). */
  async create(record: RoomRecord): Promise<boolean> {
    return this.bucket.create(record.name, record);
  }

  async get(name: string): Promise<RoomRecord | undefined> {
    return this.bucket.get(name);
  }

  async list(names?: readonly string[]): Promise<RoomRecord[]> {
    const keys = names ?? (await this.bucket.keys());
    const out: RoomRecord[] = [];
    for (const key of keys) {
      const r = await this.bucket.get(key);
      if (r) out.push(r);
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Applies `change` by compare-and-set (retried when another node wrote first); undefined: no such room. */
  async update(name: string, change: (r: RoomRecord) => RoomRecord): Promise<RoomRecord | undefined> {
    for (;;) {
      const found = await this.bucket.entry(name);
      if (!found) return undefined;
      const next = change(found.value);
      if (await this.bucket.update(name, next, found.revision)) return next;
    }
  }

  /** Deletes the record and closes the live room on every node; false when there was none. */
  async delete(name: string): Promise<boolean> {
    const found = await this.bucket.get(name);
    if (!found) return false;
    await this.bucket.delete(name);
    this.bus.publish(`chorus.native.room.${subjectToken(name)}.closed`, busJson({ room: name }));
    return true;
  }

  /** Everyone in the room on every node that answered. */
  async participants(room: string): Promise<ParticipantInfo[]> {
    const { answers } = await askEveryNode(
      this.bus,
      this.nodeIds(),
      'chorus.participants',
      { room },
      participantsAnswer,
      { timeoutMs: NODE_TIMEOUT_MS, surface: 'chorus', log: this.busLog },
    );
    const out: ParticipantInfo[] = [];
    // A node answers for itself only: an answer naming another node is not believed.
    for (const [node, a] of answers) for (const p of a.participants) if (p.node === node) out.push(p);
    return out.sort((a, b) => a.identity.localeCompare(b.identity));
  }

  /** Removes `who` from the room wherever they are connected; false when nobody had them. */
  async removeParticipant(room: string, who: string, reason?: string): Promise<boolean> {
    const { answers } = await askEveryNode(
      this.bus,
      this.nodeIds(),
      'chorus.remove',
      { room, identity: who, ...(reason === undefined ? {} : { reason }) },
      removeAnswer,
      { timeoutMs: NODE_TIMEOUT_MS, surface: 'chorus', log: this.busLog },
    );
    return [...answers.values()].some((a) => a.removed);
  }

  /**
   * Mutes (or unmutes) `who`'s track `track` by the server, on whichever node publishes
   * it; false when no node has that track.
   */
  async muteTrack(room: string, who: string, track: string, muted: boolean): Promise<boolean> {
    const { answers } = await askEveryNode(
      this.bus,
      this.nodeIds(),
      'chorus.mute',
      { room, identity: who, track, muted },
      muteAnswer,
      { timeoutMs: NODE_TIMEOUT_MS, surface: 'chorus', log: this.busLog },
    );
    return [...answers.values()].some((a) => a.found);
  }

  close(): void {
    for (const s of this.subs) s.unsubscribe();
    this.subs.length = 0;
  }

  private nodeIds(): string[] {
    return this.membership.nodes().map((n) => n.id);
  }

  /** This node's share of a room. */
  private localParticipants(room: string): ParticipantInfo[] {
    const live = this.rooms.get(KIND, room);
    if (!live) return [];
    const node = this.membership.selfId;
    return [...live.participants.values()].map((p) => ({
      identity: p.id,
      node,
      ...this.describe(room, p.id),
      tracks: [...p.tracks.values()].map((t) => ({ ...t.info(), muted: t.muted })),
    }));
  }

  private answerParticipants(msg: BusMessage): void {
    const q = readBusJson(
      participantsQuestion,
      msg.data,
      { surface: 'chorus', subject: msg.subject },
      this.busLog,
    );
    if (!q) return;
    msg.respond?.(busJson({ participants: this.localParticipants(q.room) }));
  }

  private answerRemove(msg: BusMessage): void {
    const q = readBusJson(removeQuestion, msg.data, { surface: 'chorus', subject: msg.subject }, this.busLog);
    if (!q) return;
    const live = this.rooms.get(KIND, q.room);
    const id = asParticipantId(q.identity);
    const removed = live?.participant(id) !== undefined;
    if (removed) {
      live.leave(id, q.reason ?? 'removed by the room service');
      this.log.info({ room: q.room, user: q.identity }, 'chorus: participant removed');
    }
    msg.respond?.(busJson({ removed }));
  }

  private answerMute(msg: BusMessage): void {
    const q = readBusJson(muteQuestion, msg.data, { surface: 'chorus', subject: msg.subject }, this.busLog);
    if (!q) return;
    const track = this.rooms.get(KIND, q.room)?.participant(asParticipantId(q.identity))?.tracks.get(q.track);
    if (track) {
      track.setMuted(q.muted, true);
      this.log.info(
        { room: q.room, user: q.identity, track: q.track, muted: q.muted },
        'chorus: track muted by the room service',
      );
    }
    msg.respond?.(busJson({ found: track !== undefined }));
  }

  private onClosed(msg: BusMessage): void {
    const e = readBusJson(closedEvent, msg.data, { surface: 'chorus', subject: msg.subject }, this.busLog);
    // The subject names the room too: both must agree, or the event is not one.
    if (!e || msg.subject !== `chorus.native.room.${subjectToken(e.room)}.closed`) return;
    if (this.rooms.get(KIND, e.room)) {
      this.rooms.close(KIND, e.room, 'room deleted');
      this.log.info({ room: e.room }, 'chorus: room deleted, live room closed');
    }
  }

  /** A bus handler that throws is logged, never thrown into the bus client. */
  private guard(msg: BusMessage, run: () => void): void {
    try {
      run();
    } catch (err) {
      this.log.error({ err, subject: msg.subject }, 'chorus: bus handler threw');
    }
  }
}
