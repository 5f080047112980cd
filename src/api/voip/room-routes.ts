import type { FastifyPluginAsync } from 'fastify';
import { ChorusError } from '../../core/errors.js';
import { form } from './form.js';
import type { VoipServices } from './voip-services.js';
import { listMembersJson, listRoomJson } from './voip-wire.js';

/**
 * `/listRoom` and `/listMembers`, any method, of the rooms of every node. Rooms open when
 * someone first streams to one.
 */
export const roomRoutes: FastifyPluginAsync<VoipServices> = async (app, { rooms }) => {
  app.all('/listRoom', async (_request, reply) =>
    reply.type('application/json').send(listRoomJson(await rooms.list())),
  );

  app.all('/listMembers', async (request, reply) => {
    const raw = form(request).roomID;
    if (raw === undefined || raw === '') throw new ChorusError('invalid_argument', 'bad room id');
    const members = await rooms.members(/^[0-9]+$/.test(raw) ? Number(raw) : raw);
    if (!members) throw new ChorusError('not_found', 'room not found');
    return reply.type('application/json').send(listMembersJson(members));
  });
};
