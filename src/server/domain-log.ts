import type { Logger } from 'pino';
import type { Engine } from '../engine/engine.js';
import type { Room } from '../core/room.js';

/**
 * The lines a person reads to follow what happens: a room or call opens and closes,
 * someone joins, publishes, leaves. One `info` line per lifecycle transition, ids as
 * fields (`kind`, `room`, `participant`, `track`), from the engine's observers (which
 * only watch): the same lines for every surface, however it reaches the room.
 */
export function logDomainEvents(engine: Engine, log: Logger): void {
  const events = log.child({ component: 'events' });
  engine.rooms.observer.on('newroom', ({ room }) => watchRoom(room, events));
}

function watchRoom(room: Room, log: Logger): void {
  const fields = { kind: room.kind, room: room.id };
  // A VOIP call is a room of two: "call started" reads better than "room opened".
  const [opened, closed] =
    room.kind === 'call' ? ['call started', 'call ended'] : ['room opened', 'room closed'];
  log.info(fields, opened);
  room.observer.on('newparticipant', ({ participant }) => {
    const who = { ...fields, participant: participant.id };
    log.info(who, 'joined');
    participant.observer.on('newtrack', ({ track }) => {
      log.info({ ...who, track: track.id, media: track.kind, source: track.source }, 'published');
    });
    participant.observer.on('close', ({ reason }) => log.info({ ...who, reason }, 'left'));
  });
  room.observer.on('close', ({ reason }) => log.info({ ...fields, reason }, closed));
}
