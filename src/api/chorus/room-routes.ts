import { z } from 'zod';
import { ChorusError } from '../../core/errors.js';
import { identity, roomName } from './access-token.js';
import { route, type ChorusRoute } from './chorus-route.js';
import { participantInfo, roomRecord, type NativeRooms } from './native-rooms.js';

const nameParams = z.object({ name: roomName });
const participantParams = z.object({ name: roomName, identity });
const metadata = z.string().max(65_536);

const createBody = z
  .object({
    name: roomName,
    metadata: metadata.default(''),
    maxParticipants: z.number().int().min(0).max(100_000).default(0),
  })
  .strict();
const updateBody = z.object({ metadata }).strict();

const roomWithCount = roomRecord.extend({
  /** Participants on the nodes that answered. */
  numParticipants: z.number().int(),
});

const notFound = (name: string): ChorusError =>
  new ChorusError('not_found', `no room ${name}`, { room: name });

/** The room service's routes (`/chorus/v1/rooms...`). */
export function roomRoutes(rooms: NativeRooms): ChorusRoute[] {
  return [
    route({
      method: 'POST',
      path: '/rooms',
      summary: 'Create a room',
      access: { grant: 'roomCreate' },
      body: createBody,
      response: roomRecord,
      status: 201,
      async handle({ body }) {
        const record = { ...body, createdAt: Math.floor(Date.now() / 1000) };
        if (!(await rooms.create(record)))
          throw new ChorusError('conflict', `room ${body.name} exists`, { room: body.name });
        return record;
      },
    }),
    route({
      method: 'GET',
      path: '/rooms',
      summary: 'List rooms',
      access: { grant: 'roomList' },
      response: z.object({ rooms: z.array(roomRecord) }),
      async handle() {
        return { rooms: await rooms.list() };
      },
    }),
    route({
      method: 'GET',
      path: '/rooms/{name}',
      summary: 'Get a room and how many are in it',
      access: { grant: 'roomListOrAdmin' },
      params: nameParams,
      response: roomWithCount,
      async handle({ params }) {
        const record = await rooms.get(params.name);
        if (!record) throw notFound(params.name);
        return { ...record, numParticipants: (await rooms.participants(params.name)).length };
      },
    }),
    route({
      method: 'PATCH',
      path: '/rooms/{name}',
      summary: "Update a room's metadata",
      access: { grant: 'roomAdmin' },
      params: nameParams,
      body: updateBody,
      response: roomRecord,
      async handle({ params, body }) {
        const next = await rooms.update(params.name, (r) => ({ ...r, metadata: body.metadata }));
        if (!next) throw notFound(params.name);
        return next;
      },
    }),
    route({
      method: 'DELETE',
      path: '/rooms/{name}',
      summary: 'Delete a room (everyone in it, on every node, is disconnected)',
      access: { grant: 'roomAdmin' },
      params: nameParams,
      async handle({ params }) {
        if (!(await rooms.delete(params.name))) throw notFound(params.name);
      },
    }),
    route({
      method: 'GET',
      path: '/rooms/{name}/participants',
      summary: 'List the participants of a room, on every node',
      access: { grant: 'roomAdmin' },
      params: nameParams,
      response: z.object({ participants: z.array(participantInfo) }),
      async handle({ params }) {
        if (!(await rooms.get(params.name))) throw notFound(params.name);
        return { participants: await rooms.participants(params.name) };
      },
    }),
    route({
      method: 'DELETE',
      path: '/rooms/{name}/participants/{identity}',
      summary: 'Remove a participant from a room (on whichever node it is connected to)',
      access: { grant: 'roomAdmin' },
      params: participantParams,
      async handle({ params }) {
        if (!(await rooms.get(params.name))) throw notFound(params.name);
        if (!(await rooms.removeParticipant(params.name, params.identity)))
          throw new ChorusError('not_found', `no participant ${params.identity} in room ${params.name}`);
      },
    }),
  ];
}
