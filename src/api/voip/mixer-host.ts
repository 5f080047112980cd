import { isChorusError } from '../../core/errors.js';
import type { MixFrame, MixListener, MixSubscription } from '../../media/audio/audio-mixer.js';
import { FRAME_BYTES } from '../../media/audio/pcm-frame.js';
import { PcmInput } from '../../media/audio/pcm-input.js';
import {
  NoRespondersError,
  subjectToken,
  type BusMessage,
  type BusSubscription,
} from '../../ports/bus/bus.js';
import { pingSubject } from '../../ports/membership/membership.js';
import { busJson, readBusJson } from '../bus-json.js';
import type { MediaGroup, Slot } from './media-group.js';
import { MixBundleWriter } from './mix-bundle.js';
import type { RelayContext } from './relay-context.js';
import { sameNode } from './room-records.js';
import {
  mixSubjects,
  relayRequest,
  type MixKey,
  type MixSubjects,
  type RelayOutcome,
  type RelayRequest,
} from './relay-wire.js';
import type { NodeRef } from './voip-node.js';

/** A member's slot taken through another node. */
interface RemoteSlot {
  node: NodeRef;
  closer: () => void;
}

/**
 * The owner's side of a relayed call or room: other nodes take members' slots in the
 * owner's model (so membership, capacity, "already connected" and `setAudioConf` are
 * decided in one place), their uploads arrive as 20 ms frames into jitter buffers that
 * the mixer hears like local ones, and each tick the mixes their listeners need go out
 * in one bundle (mix-bundle.ts): each distinct mix once, already encoded, for every
 * node. A remote listener is a listener of the mixer like a local one, so mix-minus
 * holds wherever a member uploads and listens.
 */
export class MixerHost {
  readonly subjects: MixSubjects;
  private readonly slots = new Map<string, RemoteSlot>();
  /** Remote uploads by their subject, and the members' listeners of the mixer. */
  private readonly mics = new Map<string, { member: string; input: PcmInput }>();
  private readonly ears = new Map<string, MixSubscription>();
  private full: MixSubscription | undefined;
  private readonly subs: BusSubscription[];
  private readonly writer = new MixBundleWriter();
  /** This tick's packets, collected from the listeners, published at its end. */
  private pendingFull: Uint8Array | undefined;
  private readonly pendingOwn = new Map<string, Uint8Array>();
  private flushQueued = false;
  private seq = 0;
  private readonly flushTask = () => this.flush();
  private readonly fullListener: MixListener = { onFrame: (f) => this.collectFull(f) };
  private closed = false;

  constructor(
    readonly key: MixKey,
    private readonly group: MediaGroup,
    private readonly ctx: RelayContext,
  ) {
    this.subjects = mixSubjects(key, ctx.self);
    this.subs = [
      ctx.bus.subscribe(this.subjects.ctl, (m) => this.onRequest(m)),
      ctx.bus.subscribe(this.subjects.upAll, (m) => this.onUpload(m)),
    ];
    group.room.events.on('close', () => this.close());
    group.reclaim = (id, slot) => this.holderGone(id, slot);
  }

  /** Frees the slots a gone node held (its streams died with it). */
  nodeGone(node: NodeRef): void {
    for (const [k, s] of [...this.slots]) {
      if (!sameNode(s.node, node)) continue;
      const [slot, member] = splitKey(k);
      this.group.release(member, slot, s.closer);
    }
  }

  private onRequest(msg: BusMessage): void {
    const req = readBusJson(
      relayRequest,
      msg.data,
      { surface: 'voip', subject: msg.subject },
      this.ctx.busLog,
    );
    if (!req) {
      this.ctx.stats.dropped++;
      msg.respond?.(busJson({ outcome: 'gone' }));
      return;
    }
    const outcome = req.op === 'occupy' ? this.occupy(req) : Promise.resolve(this.release(req));
    outcome.then(
      (o) => msg.respond?.(busJson({ outcome: o })),
      (err: unknown) => {
        this.ctx.log.warn({ err, key: this.key }, 'voip relay: request failed');
        msg.respond?.(busJson({ outcome: 'gone' }));
      },
    );
  }

  private async occupy(req: RelayRequest): Promise<RelayOutcome> {
    let outcome = this.take(req);
    // Held through a node that died (its member reconnecting elsewhere): freed, then taken.
    if (outcome === 'conflict' && (await this.holderGone(req.member, req.slot))) outcome = this.take(req);
    return outcome;
  }

  private take(req: RelayRequest): RelayOutcome {
    if (this.closed || this.group.closed) return 'gone';
    const k = slotKey(req.slot, req.member);
    const closer = () => this.ended(req.member, req.slot, req.node);
    try {
      if (!this.group.occupy(req.member, req.slot, closer)) return 'conflict';
    } catch (err) {
      if (isChorusError(err) && err.code === 'capacity') return 'capacity';
      throw err;
    }
    this.slots.set(k, { node: req.node, closer });
    if (req.slot === 'mic') {
      const input = new PcmInput(undefined, this.ctx.inputBufferMs);
      this.mics.set(this.subjects.up(req.member), { member: req.member, input });
      this.group.mixer.addInput(req.member, input);
    } else {
      this.full ??= this.group.mixer.listen(this.fullListener);
      const member = req.member;
      this.ears.set(member, this.group.mixer.listen({ onFrame: (f) => this.collect(member, f) }, member));
    }
    return 'ok';
  }

  /**
   * Whether the member's slot was held through a node that no longer answers for it
   * (no responder to its ping, or another instance answering): then it is freed now. A
   * ping that times out counts as alive: a busy node keeps its members.
   */
  private async holderGone(member: string, slot: Slot): Promise<boolean> {
    const k = slotKey(slot, member);
    const held = this.slots.get(k);
    if (!held) return false;
    try {
      const answer = await this.ctx.bus.request(pingSubject(subjectToken(held.node.id)), '', {
        timeoutMs: PING_TIMEOUT_MS,
      });
      if (new TextDecoder().decode(answer) === held.node.instance) return false;
    } catch (err) {
      if (!(err instanceof NoRespondersError)) return false;
    }
    if (this.slots.get(k) === held) this.group.release(member, slot, held.closer);
    return true;
  }

  private release(req: RelayRequest): RelayOutcome {
    const s = this.slots.get(slotKey(req.slot, req.member));
    if (s && sameNode(s.node, req.node)) this.group.release(req.member, req.slot, s.closer);
    return 'ok';
  }

  /** The model ended a remote slot (released, replaced, call over): undo its relay side. */
  private ended(member: string, slot: Slot, node: NodeRef): void {
    const k = slotKey(slot, member);
    if (!this.slots.has(k)) return;
    this.slots.delete(k);
    if (slot === 'mic') {
      this.mics.delete(this.subjects.up(member));
      this.group.mixer.removeInput(member);
    } else {
      this.ears.get(member)?.close();
      this.ears.delete(member);
      if (this.ears.size === 0) {
        this.full?.close();
        this.full = undefined;
      }
    }
    this.ctx.bus.publish(this.subjects.node(node.id), busJson({ op: 'close', member, slot }));
  }

  private onUpload(msg: BusMessage): void {
    const mic = this.mics.get(msg.subject);
    if (!mic || msg.data.byteLength !== FRAME_BYTES) {
      this.ctx.stats.dropped++;
      this.ctx.busLog.warn(
        { subject: msg.subject, bytes: msg.data.byteLength },
        'voip relay: upload frame for no remote speaker, or not one frame: dropped',
      );
      return;
    }
    this.ctx.stats.framesReceived++;
    mic.input.write(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength));
  }

  // Each listener of the mixer is called once a tick. A second call for the same one
  // means a new tick began (the clock catching up runs several ticks at once), so the
  // earlier one is published first; otherwise it goes at the end of the tick.
  private collectFull(f: MixFrame): void {
    if (this.pendingFull) this.flush();
    this.pendingFull = f.opus();
    this.queueFlush();
  }

  private collect(member: string, f: MixFrame): void {
    if (this.pendingOwn.has(member)) this.flush();
    this.pendingOwn.set(member, f.opus());
    this.queueFlush();
  }

  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(this.flushTask);
  }

  private flush(): void {
    this.flushQueued = false;
    const full = this.pendingFull;
    if (full && !this.closed) {
      this.writer.begin(this.seq++, full);
      let mixes = 1;
      // A member quiet this tick got the full mix's very packet: not sent twice.
      for (const [member, packet] of this.pendingOwn) {
        if (packet === full) continue;
        this.writer.add(member, packet);
        mixes++;
      }
      this.ctx.bus.publish(this.subjects.mix, this.writer.end());
      this.ctx.stats.bundlesSent++;
      this.ctx.stats.mixesSent += mixes;
    }
    this.pendingFull = undefined;
    this.pendingOwn.clear();
  }

  /** The call or room closed: every node ends its streams of it. */
  private close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.subs) s.unsubscribe();
    this.mics.clear();
    this.ears.clear();
    this.slots.clear();
    this.ctx.bus.publish(this.subjects.closed, '');
  }
}

const PING_TIMEOUT_MS = 1000;

const slotKey = (slot: Slot, member: string): string => `${slot}\u0000${member}`;

function splitKey(k: string): [Slot, string] {
  const at = k.indexOf('\u0000');
  return [k.slice(0, at) as Slot, k.slice(at + 1)];
}
