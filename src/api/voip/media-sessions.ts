import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { ChorusError } from '../../core/errors.js';
import { PcmInput, preparePcmInput } from '../../media/audio/pcm-input.js';
import type { TicketUse } from './challenge-book.js';
import { Departures } from './departures.js';
import { form, type Form } from './form.js';
import type { MediaSlots, Slot } from './media-group.js';
import { MixerGoneError } from './remote-group.js';
import type { Caller, VoipAuth } from './voip-auth.js';
import type { VoipCalls } from './voip-calls.js';
import type { RoomRef, VoipRooms } from './voip-rooms.js';
import { parseFormat, type ListenFormat } from './voip-wire.js';

/** What a media route settled before the upgrade or the stream starts. */
export interface MediaPlan {
  me: Caller;
  /** This node's mixer (MediaGroup) or another node's through the relay (RemoteGroup). */
  group: MediaSlots;
  format: ListenFormat;
  input?: { rate: number; channels: number };
  room?: RoomRef;
  /** A room mixed here: how to open it again if it emptied before the stream started. */
  roomKey?: number | string;
  roomId?: number;
}

/** Rounds of finding a room's holder, when one turns out not to hold it. */
const ROOM_ATTEMPTS = 3;

/**
 * Listeners' slots freed per turn of the event loop once their streams end (see
 * Departures): a release costs 20-60 us here, so a slice stays within a few ms.
 */
const RELEASES_PER_TURN = 64;

export interface MediaSessionsOptions {
  auth: VoipAuth;
  calls: VoipCalls;
  rooms: VoipRooms;
  maxRoomMembers: number;
  /** Jitter buffer of an upload's PCM input. */
  inputBufferMs: number;
  log: Logger;
}

/**
 * The media routes' shared steps, whatever carries the audio (a WebSocket, a request
 * body, a response): `plan` settles who, which call or room, and which slot, before any
 * stream starts; `startUpload` and `startListen` take the slot and run the stream until
 * it ends, then free the slot and tell the side site.
 */
export class MediaSessions {
  /** Listeners whose streams ended, their slots freed a slice per turn. */
  readonly departures: Departures;
  /** Each member's open listening streams that can be asked whether they are still there. */
  private readonly wakers = new Map<string, Set<() => Promise<void>>>();

  constructor(private readonly opts: MediaSessionsOptions) {
    this.departures = new Departures(RELEASES_PER_TURN, (err) =>
      opts.log.warn({ err }, 'voip: freeing a listener slot failed'),
    );
  }

  async plan(request: FastifyRequest, use: TicketUse): Promise<MediaPlan> {
    const { auth, calls } = this.opts;
    const f = form(request);
    const upload = use === 'upCall' || use === 'upRoom';
    const format = upload ? 'wav' : parseFormat(f.format);
    if (!format) throw new ChorusError('invalid_argument', 'bad format: wav, ogg, opus or vorbis');
    const input = upload ? pcmFormat(f) : undefined;
    const me = await auth.caller(request, f, use);
    // A listening stream of `me` whose client is gone but not yet found gone (its socket
    // is not read: listen-session.ts) is asked first; one that ended but is not freed yet
    // must not hold the slot against them either.
    if (!upload) await this.wakeListeners(me.id);
    this.departures.settle(me.id);
    // Before any stream starts: startUpload makes the PcmInput synchronously.
    if (input) await preparePcmInput(input);
    const slot = upload ? 'mic' : 'hds';
    const io = input ? { input } : {};
    if (use === 'upCall' || use === 'joinCall') {
      const other = auth.party(f.otherID, 'other id');
      const group = calls.media(me.id, other) ?? (await calls.remoteMedia(me.id, other));
      if (!group) throw new ChorusError('not_found', 'call not found');
      try {
        await group.reserve(me.id, slot);
      } catch (err) {
        if (err instanceof MixerGoneError) throw new ChorusError('not_found', 'call not found');
        throw err;
      }
      return { me, group, format, ...io };
    }
    return { me, format, ...io, ...(await this.admitToRoom(me, f.roomID, slot)) };
  }

  /**
   * Feeds an upload to the plan's mixer: `run` starts the transport and returns how to
   * stop it; it calls `done` once when the upload ends.
   */
  startUpload(p: MediaPlan, run: (input: PcmInput, done: () => void) => () => void): void {
    let stop = () => undefined as void;
    const closer = () => stop();
    this.occupy(p, 'mic', closer);
    const input = new PcmInput(p.input, this.opts.inputBufferMs);
    p.group.mixer.addInput(p.me.id, input);
    stop = run(input, () => {
      p.group.mixer.removeInput(p.me.id);
      p.group.release(p.me.id, 'mic', closer);
      this.left(p, 'mic');
    });
  }

  /**
   * Streams the plan's mix: `run` as for uploads. The slot is freed in a later turn
   * (Departures): a room's listeners hanging up at once are freed a slice per turn.
   */
  startListen(p: MediaPlan, run: (done: () => void) => (() => void) & { wake?: () => Promise<void> }): void {
    let stop = () => undefined as void;
    const closer = () => stop();
    this.occupy(p, 'hds', closer);
    const ref: { wake?: () => Promise<void> } = {};
    const started = run(() => {
      const mine = this.wakers.get(p.me.id);
      if (ref.wake) mine?.delete(ref.wake);
      if (mine?.size === 0) this.wakers.delete(p.me.id);
      this.departures.add(p.me.id, () => {
        p.group.release(p.me.id, 'hds', closer);
        this.left(p, 'hds');
      });
    });
    stop = started;
    if (started.wake) {
      ref.wake = started.wake;
      const mine = this.wakers.get(p.me.id) ?? new Set();
      mine.add(started.wake);
      this.wakers.set(p.me.id, mine);
    }
  }

  /** Asks `id`'s open listening streams whether their clients are still there. */
  private async wakeListeners(id: string): Promise<void> {
    const mine = this.wakers.get(id);
    if (mine) await Promise.all([...mine].map((w) => w()));
  }

  /**
   * Admits `me` to the room's slot: on its mixer here, or booked on the node that mixes
   * it. A holder found not holding it after all (dead, or it closed the room meanwhile)
   * is forgotten and the room opened again, here or wherever it went.
   */
  private async admitToRoom(
    me: Caller,
    raw: string | undefined,
    slot: Slot,
  ): Promise<Pick<MediaPlan, 'group' | 'room' | 'roomKey' | 'roomId'>> {
    const { auth, rooms, maxRoomMembers } = this.opts;
    const key = await auth.roomKey(raw, me, slot);
    for (let attempt = 0; attempt < ROOM_ATTEMPTS; attempt++) {
      const opened = await rooms.open(key);
      if ('remote' in opened) {
        const room = opened.remote;
        try {
          await room.group.reserve(me.id, slot);
          return { group: room.group, room };
        } catch (err) {
          if (!(err instanceof MixerGoneError)) throw err;
          await rooms.forgetHolder(room.id, room.group.owner);
          continue;
        }
      }
      const { room } = opened;
      await room.group.reserve(me.id, slot);
      if (room.group.size >= maxRoomMembers && !room.group.ids().includes(me.id)) {
        rooms.removeIfEmpty(room);
        throw new ChorusError('capacity', 'room full');
      }
      return { group: room.group, room, roomKey: auth.keyOf(room), roomId: room.id };
    }
    throw new ChorusError('unavailable', 'room changing nodes, try again');
  }

  /**
   * Takes the slot in the plan's call or room. Between the plan and now (a WebSocket
   * upgrade) the call may have ended, or the room emptied and gone: a room is then
   * opened again, a call is not found.
   */
  private occupy(p: MediaPlan, slot: Slot, closer: () => void): void {
    this.departures.settle(p.me.id);
    // Only a room mixed here has a key to open it again with (roomKey).
    if (p.group.closed && p.roomKey !== undefined && p.roomId !== undefined) {
      const room = this.opts.rooms.grab(p.roomKey, p.roomId);
      if (!room) throw new ChorusError('capacity', 'too many rooms');
      p.room = room;
      p.group = room.group;
    }
    if (p.group.closed) throw new ChorusError('not_found', 'call not found');
    if (!p.group.occupy(p.me.id, slot, closer)) throw new ChorusError('conflict', 'user already connected');
  }

  /** Tells the side site a room member stopped sending or listening. */
  private left(p: MediaPlan, slot: Slot): void {
    if (p.room) this.opts.auth.leftRoom(p.room, p.me, slot);
  }
}

function pcmFormat(f: Form): { rate: number; channels: number } {
  const rate = f.rate === undefined ? 48_000 : Number(f.rate);
  const channels = f.channels === undefined ? 1 : Number(f.channels);
  if (!Number.isInteger(rate) || rate < 8000 || rate > 192_000)
    throw new ChorusError('invalid_argument', 'bad rate: 8000-192000');
  if (!Number.isInteger(channels) || channels < 1 || channels > 8)
    throw new ChorusError('invalid_argument', 'bad channels: 1-8');
  return { rate, channels };
}
