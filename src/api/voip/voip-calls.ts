import type { Logger } from 'pino';
import { CallBook, type Call, type CallEnd } from '../../core/call-book.js';
import type { RoomRegistry } from '../../core/room-registry.js';
import type { AudioHub } from '../../media/audio/audio-hub.js';
import { MediaGroup } from './media-group.js';
import type { EventFields, EventName } from './voip-wire.js';

export type Notify = (to: string, name: EventName, fields: EventFields) => void;

/**
 * Calls of the VOIP surface: the call state machine (CallBook, each call a room of two)
 * plus, once accepted, the call's mixer and streams. When a call ends its room closes
 * (the streams stop, the mixer with them) and both parties are told: `declineCall` when
 * it was never answered, `endCall` (a Chorus event) otherwise.
 */
export class VoipCalls {
  readonly book: CallBook;
  private readonly groups = new Map<Call, MediaGroup>();

  constructor(
    rooms: RoomRegistry,
    private readonly audio: AudioHub,
    opts: { ringTimeoutMs: number; idleTimeoutMs: number },
    private readonly notify: Notify,
    private readonly log: Logger,
  ) {
    this.book = new CallBook(rooms, { ...opts, onEnd: (call, reason) => this.ended(call, reason) });
  }

  ring(caller: string, callee: string): Call {
    const call = this.book.ring(caller, callee);
    this.log.info({ caller, callee }, 'voip call ringing');
    return call;
  }

  accept(callee: string, caller: string): Call | undefined {
    const call = this.book.accept(callee, caller);
    if (!call) return undefined;
    const group = new MediaGroup(call.room, this.audio, (id, mic, hds) =>
      this.notify(call.other(id), 'setAudioConf', { from: id, in: mic, out: hds }),
    );
    this.groups.set(call, group);
    this.log.info({ caller, callee }, 'voip call accepted');
    return call;
  }

  /** The media of the accepted call between two parties. */
  media(a: string, b: string): MediaGroup | undefined {
    const call = this.book.between(a, b);
    return call?.state === 'accepted' ? this.groups.get(call) : undefined;
  }

  get activeMedia(): number {
    return this.groups.size;
  }

  /** After the call's room closed (its streams and mixer stopped). */
  private ended(call: Call, reason: CallEnd): void {
    this.log.info({ caller: call.caller, callee: call.callee, reason }, 'voip call ended');
    this.groups.delete(call);
    if (reason === 'rejected' || reason === 'shutdown') return;
    const name: EventName = reason === 'ring-timeout' ? 'declineCall' : 'endCall';
    this.notify(call.caller, name, { from: call.callee });
    this.notify(call.callee, name, { from: call.caller });
  }
}
