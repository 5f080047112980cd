import type { Logger } from 'pino';
import { z } from 'zod';
import { CallBook, type Call, type CallEnd } from '../../core/call-book.js';
import { ChorusError } from '../../core/errors.js';
import type { RoomRegistry } from '../../core/room-registry.js';
import type { ThrottledLog } from '../../lib/throttled-log.js';
import type { AudioHub } from '../../media/audio/audio-hub.js';
import {
  BusTimeoutError,
  NoRespondersError,
  subjectToken,
  type Bus,
  type BusMessage,
  type BusSubscription,
} from '../../ports/bus/bus.js';
import type { Store } from '../../ports/store/store.js';
import { busJson, readBusJson } from '../bus-json.js';
import { CallRecords, type CallRecord } from './call-records.js';
import { MediaGroup } from './media-group.js';
import type { MediaRelay } from './media-relay.js';
import type { RemoteGroup } from './remote-group.js';
import type { VoipNode } from './voip-node.js';
import type { EventFields, EventName } from './voip-wire.js';

export type Notify = (to: string, name: EventName, fields: EventFields) => void;

export interface VoipCallsOptions {
  rooms: RoomRegistry;
  audio: AudioHub;
  ringTimeoutMs: number;
  idleTimeoutMs: number;
  notify: Notify;
  bus: Bus;
  store: Store;
  node: VoipNode;
  /** Serves the mixers of the calls owned here to the other nodes, and reaches theirs. */
  relay: MediaRelay;
  log: Logger;
  /** For bad bus messages. */
  busLog: ThrottledLog;
}

/** What another node asks of a call's owner, on `chorus.voip.call.<id>`. */
const callCommand = z.object({
  op: z.enum(['accept', 'reject', 'end']),
  /** The party asking. */
  by: z.string().min(1).max(256),
  reason: z.enum(['hangup', 'replaced']).optional(),
});
type CallCommand = z.infer<typeof callCommand>;

/** `gone`: the owner holds no such call (ended, or the owner restarted). */
type Outcome = 'ok' | 'refused' | 'gone';
const commandAnswer = z.object({ outcome: z.enum(['ok', 'refused', 'gone']) });

const RING_ATTEMPTS = 5;
const COMMAND_TIMEOUT_MS = 3000;

/**
 * Calls of the VOIP surface across nodes. A call is owned by the node where it was
 * placed: its state machine (CallBook, each call a room of two), its timers and, once
 * accepted, its mixer and streams live there. The pair's record in the store
 * (CallRecords) names the owner, so "one live call per pair" holds cluster-wide; any
 * node reads it, and accept, reject and hang-up from another node go to the owner as a
 * bus request on `chorus.voip.call.<id>`. When a call ends its room closes (the streams
 * stop, the mixer with them) and both parties are told, on whichever node their event
 * streams are: `declineCall` when it rang out, `endCall` (a Chorus event) otherwise.
 * When the owner node is gone, the first node to release its record tells the parties.
 * A party streaming on another node reaches the owner's mixer through the media relay.
 */
export class VoipCalls {
  readonly book: CallBook;
  private readonly records: CallRecords;
  private readonly groups = new Map<Call, MediaGroup>();
  private readonly subs = new Map<Call, BusSubscription>();
  /** Record releases under way, by call id (a command's answer waits for its own). */
  private readonly releasing = new Map<string, Promise<unknown>>();

  constructor(private readonly opts: VoipCallsOptions) {
    this.records = new CallRecords(opts.store);
    this.book = new CallBook(opts.rooms, {
      ringTimeoutMs: opts.ringTimeoutMs,
      idleTimeoutMs: opts.idleTimeoutMs,
      onEnd: (call, reason) => this.ended(call, reason),
    });
    opts.node.onNodeGone((node) => void this.ownerGone(node));
  }

  /** The live call between two parties, on any node (one whose owner is gone is not live). */
  async find(a: string, b: string): Promise<CallRecord | undefined> {
    const { live } = await this.records.slot(a, b);
    if (!live || this.isMine(live) || this.opts.node.isAlive(live.owner.id)) return live;
    await this.orphaned(live);
    return undefined;
  }

  /** Rings `callee` from here, ending the pair's earlier call wherever it is. */
  async ring(caller: string, callee: string): Promise<Call> {
    for (let attempt = 0; attempt < RING_ATTEMPTS; attempt++) {
      const { live, entry } = await this.records.slot(caller, callee);
      if (live) {
        // The owner ends it and releases the slot (or it is gone, and `command` released it).
        await this.command(live, { op: 'end', by: caller, reason: 'replaced' });
        continue;
      }
      const call = this.book.ring(caller, callee);
      // Listening before the record names this node: whoever reads the record can ask.
      this.subs.set(
        call,
        this.opts.bus.subscribe(commandSubject(call.id), (msg) => this.onCommand(call, msg)),
      );
      if (await this.records.claim(this.recordOf(call), entry)) {
        this.opts.log.info({ caller, callee, call: call.id }, 'voip call ringing');
        return call;
      }
      // Another node's call for this pair took the slot first: this one never rang.
      this.book.end(call, 'lost');
    }
    throw new ChorusError('conflict', 'call in progress');
  }

  /** The callee accepts, on whichever node owns the call; false when no such call rings. */
  async accept(callee: string, caller: string): Promise<boolean> {
    const rec = await this.find(caller, callee);
    if (rec?.state !== 'ringing' || rec.callee !== callee) return false;
    return (await this.command(rec, { op: 'accept', by: callee })) === 'ok';
  }

  async reject(callee: string, caller: string): Promise<boolean> {
    const rec = await this.find(caller, callee);
    if (rec?.state !== 'ringing' || rec.callee !== callee) return false;
    return (await this.command(rec, { op: 'reject', by: callee })) === 'ok';
  }

  /** `me` hangs up the call with `other`, wherever it is; false when there is none. */
  async hangUp(me: string, other: string): Promise<boolean> {
    const rec = await this.find(me, other);
    if (!rec) return false;
    return (await this.command(rec, { op: 'end', by: me, reason: 'hangup' })) === 'ok';
  }

  /** The media of the accepted call between two parties, when this node holds it. */
  media(a: string, b: string): MediaGroup | undefined {
    const call = this.book.between(a, b);
    return call?.state === 'accepted' ? this.groups.get(call) : undefined;
  }

  /** The media of the accepted call between two parties when another node owns it. */
  async remoteMedia(a: string, b: string): Promise<RemoteGroup | undefined> {
    const rec = await this.find(a, b);
    if (rec?.state !== 'accepted' || this.isMine(rec)) return undefined;
    return this.opts.relay.remote({ kind: 'call', id: rec.id }, rec.owner);
  }

  get activeMedia(): number {
    return this.groups.size;
  }

  /** Ends this node's calls (the parties are told) and waits for their records. */
  async close(): Promise<void> {
    this.book.close();
    await Promise.allSettled([...this.releasing.values()]);
  }

  private recordOf(call: Call): CallRecord {
    const state = call.state === 'accepted' ? 'accepted' : 'ringing';
    return { id: call.id, caller: call.caller, callee: call.callee, state, owner: this.opts.node.self };
  }

  private isMine(rec: CallRecord): boolean {
    const self = this.opts.node.self;
    return rec.owner.id === self.id && rec.owner.instance === self.instance;
  }

  /**
   * Runs `cmd` on the call's owner: here directly, elsewhere by bus request. When the
   * owner holds no such call (nobody answers its subject: a restarted or dead node) the
   * record is stale: it is released, and the parties told, so nobody stays busy.
   */
  private async command(rec: CallRecord, cmd: CallCommand): Promise<Outcome> {
    const outcome = this.isMine(rec) ? await this.execute(rec.id, cmd) : await this.ask(rec, cmd);
    if (outcome === 'gone') await this.orphaned(rec);
    return outcome;
  }

  private async ask(rec: CallRecord, cmd: CallCommand): Promise<Outcome> {
    try {
      const answer = await this.opts.bus.request(commandSubject(rec.id), busJson(cmd), {
        timeoutMs: COMMAND_TIMEOUT_MS,
      });
      const parsed = readBusJson(
        commandAnswer,
        answer,
        { surface: 'voip', subject: commandSubject(rec.id) },
        this.opts.busLog,
      );
      return parsed?.outcome ?? 'refused';
    } catch (err) {
      if (err instanceof NoRespondersError) return 'gone';
      if (err instanceof BusTimeoutError)
        throw new ChorusError('unavailable', `call owner ${rec.owner.id} did not answer`);
      throw err;
    }
  }

  private onCommand(call: Call, msg: BusMessage): void {
    const cmd = readBusJson(
      callCommand,
      msg.data,
      { surface: 'voip', subject: msg.subject },
      this.opts.busLog,
    );
    if (!cmd) {
      msg.respond?.(busJson({ outcome: 'refused' }));
      return;
    }
    this.execute(call.id, cmd).then(
      (outcome) => msg.respond?.(busJson({ outcome })),
      (err: unknown) => {
        this.opts.log.warn({ err, call: call.id, op: cmd.op }, 'voip: call command failed');
        msg.respond?.(busJson({ outcome: 'refused' }));
      },
    );
  }

  /** The owner's side of a command; answers once the call's record says so. */
  private async execute(id: string, cmd: CallCommand): Promise<Outcome> {
    const call = this.book.find(id);
    if (!call) {
      await this.releasing.get(id);
      return 'gone';
    }
    const ringingForMe = call.state === 'ringing' && call.callee === cmd.by;
    switch (cmd.op) {
      case 'accept':
        if (!ringingForMe) return 'refused';
        this.acceptHere(call);
        await this.records.setState(this.recordOf(call), 'accepted');
        return 'ok';
      case 'reject':
        if (!ringingForMe) return 'refused';
        this.book.reject(cmd.by, call.caller);
        break;
      case 'end':
        if (cmd.by !== call.caller && cmd.by !== call.callee) return 'refused';
        this.book.end(call, cmd.reason ?? 'hangup');
        break;
    }
    await this.releasing.get(id);
    return 'ok';
  }

  private acceptHere(call: Call): void {
    if (!this.book.accept(call.callee, call.caller)) return;
    const group = new MediaGroup(call.room, this.opts.audio, (id, mic, hds) =>
      this.opts.notify(call.other(id), 'setAudioConf', { from: id, in: mic, out: hds }),
    );
    this.groups.set(call, group);
    // Served before the record says accepted: a party on another node can reach it then.
    this.opts.relay.host({ kind: 'call', id: call.id }, group);
    this.opts.log.info({ caller: call.caller, callee: call.callee, call: call.id }, 'voip call accepted');
  }

  /** After the call's room closed (its streams and mixer stopped). */
  private ended(call: Call, reason: CallEnd): void {
    this.groups.delete(call);
    this.subs.get(call)?.unsubscribe();
    this.subs.delete(call);
    const released = this.records
      .release(call)
      .catch((err: unknown) => this.opts.log.warn({ err, call: call.id }, 'voip: call record not released'))
      .finally(() => this.releasing.delete(call.id));
    this.releasing.set(call.id, released);
    if (reason === 'lost') return;
    this.opts.log.info(
      { caller: call.caller, callee: call.callee, call: call.id, reason },
      'voip call ended',
    );
    if (reason === 'rejected') return;
    const name: EventName = reason === 'ring-timeout' ? 'declineCall' : 'endCall';
    this.opts.notify(call.caller, name, { from: call.callee });
    this.opts.notify(call.callee, name, { from: call.caller });
  }

  /** A call whose owner is gone: whoever releases its record tells both parties. */
  private async orphaned(rec: CallRecord): Promise<void> {
    if (!(await this.records.release(rec))) return;
    this.opts.log.info({ call: rec.id, owner: rec.owner.id }, 'voip call ended: its node is gone');
    this.opts.notify(rec.caller, 'endCall', { from: rec.callee });
    this.opts.notify(rec.callee, 'endCall', { from: rec.caller });
  }

  private async ownerGone(node: { id: string; instance: string }): Promise<void> {
    try {
      for await (const rec of this.records.ownedBy(node)) await this.orphaned(rec);
    } catch (err) {
      this.opts.log.warn({ err, node: node.id }, 'voip: calls of a gone node not all ended');
    }
  }
}

function commandSubject(callId: string): string {
  return `chorus.voip.call.${subjectToken(callId)}`;
}
