import type { RoomRegistry } from '../../core/room-registry.js';
import type { Room } from '../../core/room.js';
import type { Participant } from '../../core/participant.js';
import type { Track } from '../../core/track.js';
import type { WebhookEvent, WebhookSender } from './webhook-sender.js';

/**
 * Turns the engine's room events into webhooks: room started/finished, participant
 * joined/left, track published/unpublished, for conference rooms (native rooms and Blue
 * Sky's). Each node reports what happens on it (its participants, its tracks; its part of
 * a room starting and ending), so in a cluster every event is sent once, by the node where
 * it happened. The engine's emitters guard listeners: one that throws is logged.
 */
export class RoomWebhooks {
  private readonly offs: (() => void)[] = [];

  constructor(rooms: RoomRegistry, sender: WebhookSender) {
    this.offs.push(
      rooms.observer.on('newroom', ({ room }) => {
        if (room.kind !== 'conference') return;
        this.follow(room, sender);
      }),
    );
  }

  close(): void {
    for (const off of this.offs.splice(0)) off();
  }

  private follow(room: Room, sender: WebhookSender): void {
    const name = { name: room.id as string };
    sender.send({ event: 'room_started', room: name });
    const offs = [
      room.events.on('participantJoined', ({ participant }) =>
        sender.send({ event: 'participant_joined', room: name, participant: { identity: participant.id } }),
      ),
      room.events.on('participantLeft', ({ participant }) =>
        sender.send({ event: 'participant_left', room: name, participant: { identity: participant.id } }),
      ),
      room.events.on('trackPublished', ({ participant, track }) =>
        sender.send(trackEvent('track_published', name, participant, track)),
      ),
      room.events.on('trackEnded', ({ participant, track }) =>
        sender.send(trackEvent('track_unpublished', name, participant, track)),
      ),
    ];
    const offClose = room.events.on('close', () => {
      sender.send({ event: 'room_finished', room: name });
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
