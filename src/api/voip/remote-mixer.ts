import type { MixFrame, MixListener, MixSubscription } from '../../media/audio/audio-mixer.js';
import { createOpusDecoder, type AudioDecoder } from '../../media/audio/audio-codec.js';
import { FRAME_SAMPLES, frameBytes } from '../../media/audio/pcm-frame.js';
import type { PcmInput } from '../../media/audio/pcm-input.js';
import type { Tickable } from '../../media/audio/mix-clock.js';
import type { BusMessage, BusSubscription } from '../../ports/bus/bus.js';
import type { MixPort } from './media-group.js';
import { emptyMixBundle, readMixBundle } from './mix-bundle.js';
import type { RelayContext } from './relay-context.js';
import type { MixSubjects } from './relay-wire.js';

/**
 * One relayed mix on this node: the current tick's packet, decoded at most once a tick
 * and only when a listener reads PCM (WAV listeners); Ogg and WebSocket listeners take
 * the packet as it came.
 */
class RelayedMix implements MixFrame {
  private packet = new Uint8Array(0);
  private decoded = false;
  private decoder: AudioDecoder | undefined;
  private readonly frame = new Int16Array(FRAME_SAMPLES);
  private readonly bytes = frameBytes(this.frame);
  readonly backlog: Uint8Array[] = [];

  constructor(private readonly backlogPackets: number) {}

  /** A new tick's packet (copied: the bundle's bytes are the bus's; kept for the backlog). */
  set(packet: Uint8Array): void {
    this.packet = new Uint8Array(packet);
    this.decoded = false;
    if (this.backlogPackets > 0) {
      this.backlog.push(this.packet);
      if (this.backlog.length > this.backlogPackets) this.backlog.shift();
    }
  }

  get pcm(): Buffer {
    if (!this.decoded) {
      this.decoded = true;
      this.decoder ??= createOpusDecoder();
      const samples = this.decoder.decode(this.packet);
      const n = Math.min(samples.length, FRAME_SAMPLES);
      this.frame.set(samples.subarray(0, n));
      this.frame.fill(0, n);
    }
    return this.bytes;
  }

  opus(): Uint8Array {
    return this.packet;
  }
}

/**
 * The mixer of a call or room another node runs, as this node's media routes see it
 * (the `MixPort` of a RemoteGroup). Uploads are paced by the relay clock to the owner,
 * one 20 ms frame a message. Listeners here share what the owner sends once a tick for
 * this whole node: one bus message, whatever their number; each hears the member's own
 * mix when the bundle has one (they are speaking), the full mix otherwise.
 */
export class RemoteMixer implements MixPort {
  private readonly uplinks = new Map<string, Tickable & { input: PcmInput }>();
  private readonly listeners = new Map<MixListener, string | undefined>();
  private readonly full: RelayedMix;
  private readonly own = new Map<string, RelayedMix>();
  private readonly bundle = emptyMixBundle();
  private sub: BusSubscription | undefined;

  constructor(
    private readonly subjects: MixSubjects,
    private readonly ctx: RelayContext,
  ) {
    this.full = new RelayedMix(ctx.backlogPackets);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  addInput(id: string, input: PcmInput): void {
    const subject = this.subjects.up(id);
    const { bus, stats } = this.ctx;
    const uplink = {
      input,
      tick: () => {
        // A new frame each time: the NATS client keeps a reference to what it
        // publishes until it flushes, after several ticks when the clock catches up.
        const frame = new Int16Array(FRAME_SAMPLES);
        if (!input.readFrame(frame)) return;
        bus.publish(subject, frameBytes(frame));
        stats.framesSent++;
      },
    };
    this.removeInput(id);
    this.uplinks.set(id, uplink);
    this.ctx.clock.add(uplink);
  }

  removeInput(id: string): void {
    const uplink = this.uplinks.get(id);
    if (!uplink) return;
    this.uplinks.delete(id);
    this.ctx.clock.remove(uplink);
    uplink.input.close();
  }

  listen(listener: MixListener, speakerId?: string): MixSubscription {
    this.listeners.set(listener, speakerId);
    this.sub ??= this.ctx.bus.subscribe(this.subjects.mix, (m) => this.onBundle(m));
    return {
      preSkip: this.ctx.preSkip,
      backlog: () => this.full.backlog.slice(),
      close: () => {
        if (!this.listeners.delete(listener)) return;
        if (speakerId !== undefined && ![...this.listeners.values()].includes(speakerId))
          this.own.delete(speakerId);
        if (this.listeners.size > 0) return;
        this.sub?.unsubscribe();
        this.sub = undefined;
      },
    };
  }

  close(): void {
    for (const id of [...this.uplinks.keys()]) this.removeInput(id);
    this.listeners.clear();
    this.sub?.unsubscribe();
    this.sub = undefined;
  }

  private onBundle(msg: BusMessage): void {
    const b = this.bundle;
    if (!readMixBundle(msg.data, b)) {
      this.ctx.stats.dropped++;
      this.ctx.busLog.warn(
        { subject: msg.subject, bytes: msg.data.byteLength },
        'voip relay: malformed mix bundle dropped',
      );
      return;
    }
    this.ctx.stats.bundlesReceived++;
    this.ctx.stats.mixesReceived += 1 + b.own.size;
    this.full.set(b.full);
    for (const [member, packet] of b.own) {
      let mix = this.own.get(member);
      if (!mix) {
        // Only members listening here: a bundle names anyone speaking anywhere.
        if (![...this.listeners.values()].includes(member)) continue;
        mix = new RelayedMix(0);
        this.own.set(member, mix);
      }
      mix.set(packet);
    }
    for (const [listener, member] of this.listeners) {
      const frame = (member !== undefined && b.own.has(member) && this.own.get(member)) || this.full;
      try {
        listener.onFrame(frame);
      } catch (err) {
        this.listeners.delete(listener);
        this.ctx.log.warn({ err }, 'voip relay: listener failed; removed');
      }
    }
  }
}
