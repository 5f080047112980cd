import type { Logger } from 'pino';
import type { RoomRegistry } from '../../core/room-registry.js';
import type { KvBucket, Store } from '../../ports/store/store.js';
import type { Room } from '../../core/room.js';
import type { Participant } from '../../core/participant.js';
import type { Track } from '../../core/track.js';
import { LEAVE_REASONS } from './rtc-close-codes.js';
import type { WebhookEvent, WebhookSender } from './webhook-sender.js';

/**
 * Turns the engine's room events into webhooks: room started/finished, participant
 * joined/left, track published/unpublished, for conference rooms (native rooms and Blue
 * Sky's). Each node reports what happens on it (its participants, its tracks), so in a
 * cluster every event is sent once, by the node where it happened. A room starts on several
 * nodes and closes on all of them (conference rooms close only cluster-wide), so those two
 * are decided in the store (`chorus-webhook-rooms`): the node that creates the room's
 * marker sends `room_started`, the one whose compare-and-set ends it sends `room_finished`.
 * A room's events leave in order behind that decision. The engine's emitters guard
 * listeners: one that throws is logged.
 */
export class RoomWebhooks {
  private readonly offs: (() => void)[] = [];
  private readonly markers: KvBucket<{ node: string; finished?: true }>;

  constructor(
    rooms: RoomRegistry,
    private readonly sender: WebhookSender,
    store: Store,
    private readonly node: string,
    private readonly log: Logger,
    /** True while a participant joins as a native session moved from another node (not reported). */
    private readonly moving: (room: string, identity: string) => boolean = () => false,
  ) {
    this.markers = store.bucket('chorus-webhook-rooms');
    this.offs.push(
      rooms.observer.on('newroom', ({ room }) => {
        if (room.kind !== 'conference') return;
        this.follow(room);
      }),
    );
  }

  close(): void {
    for (const off of this.offs.splice(0)) off();
  }

  /** First in the cluster to start the room: true once, for the node that made its marker. */
  private async started(name: string): Promise<boolean> {
    return this.markers.create(name, { node: this.node });
  }

  /** First to end it: the compare-and-set on the marker decides; the winner removes it. */
  private async finished(name: string): Promise<boolean> {
    const found = await this.markers.entry(name);
    if (!found || found.value.finished) return false;
    if (!(await this.markers.update(name, { ...found.value, finished: true }, found.revision))) return false;
    await this.markers.delete(name);
    return true;
  }

  private follow(room: Room): void {
    const name = { name: room.id as string };
    // Events of the room leave in order, each after the decision before it.
    let chain: Promise<unknown> = Promise.resolve();
    const sender = {
      send: (event: WebhookEvent): void => {
        chain = chain.then(() => this.sender.send(event));
      },
      decide: (decision: () => Promise<boolean>, event: WebhookEvent): void => {
        chain = chain.then(decision).then(
          (won) => won && this.sender.send(event),
          (err: unknown) =>
            this.log.warn({ err, room: name.name }, `chorus: ${event.event} webhook undecided (store)`),
        );
      },
    };
    sender.decide(() => this.started(name.name), { event: 'room_started', room: name });
    const offs = [
      room.events.on('participantJoined', ({ participant }) => {
        // A native session moving between nodes neither left nor joined the room.
        if (this.moving(name.name, participant.id)) return;
        sender.send({ event: 'participant_joined', room: name, participant: { identity: participant.id } });
      }),
      room.events.on('participantLeft', ({ participant, reason }) => {
        if (reason === LEAVE_REASONS.moved) return;
        sender.send({ event: 'participant_left', room: name, participant: { identity: participant.id } });
      }),
      room.events.on('trackPublished', ({ participant, track }) =>
        sender.send(trackEvent('track_published', name, participant, track)),
      ),
      room.events.on('trackEnded', ({ participant, track }) =>
        sender.send(trackEvent('track_unpublished', name, participant, track)),
      ),
    ];
    const offClose = room.events.on('close', () => {
      sender.decide(() => this.finished(name.name), { event: 'room_finished', room: name });
      for (const off of offs) off();
      offClose();
    });
  }
}

function trackEvent(
  event: 'track_published' | 'track_unpublished',
  room: { name: string },
  participant: Participant,
  track: Track,
): WebhookEvent {
  return {
    event,
    room,
    participant: { identity: participant.id },
    track: { id: track.id, kind: track.kind, source: track.source },
  };
}
