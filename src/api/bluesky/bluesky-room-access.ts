import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { asRoomId, type Room } from '../../core/room.js';
import type { RoomDirectory, RoomRecord } from '../../core/room-directory.js';
import type { RoomRegistry } from '../../core/room-registry.js';
import { conferenceRoom } from './bluesky-quotas.js';

/** user_id and peer ids: what a person's id looks like, safe in logs and URLs. */
export const USER_ID = /^[-_.@A-Za-z0-9]{1,128}$/;

/** The secured mode's credentials travel in headers, so seed bodies keep their shape. */
export const ADMIN_KEY = 'x-admin-key';
export const PARTICIPANT_KEY = 'x-participant-key';

/** The original's refusal: `{"error": "..."}` with the status. */
export const fail = (reply: FastifyReply, status: number, error: string) =>
  reply.code(status).send({ error });

function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return typeof v === 'string' && v.length > 0 && v.length <= 256 ? v : undefined;
}

/** The body's `user_id` when it looks like one. */
export function bodyUser(request: FastifyRequest): string | undefined {
  const body = request.body as { user_id?: unknown } | undefined;
  return body && typeof body.user_id === 'string' && USER_ID.test(body.user_id) ? body.user_id : undefined;
}

/**
 * What every Blue Sky route group asks before acting on a room: is it open (with its
 * live state), and, in secured mode, does the request carry the right key.
 */
export class BlueSkyRoomAccess {
  constructor(
    private readonly directory: RoomDirectory,
    private readonly rooms: RoomRegistry,
    /** Rooms are closed with the admin key and joined for a participant key (docs/bluesky.md). */
    readonly secureRooms: boolean,
    private readonly log: Logger,
  ) {}

  /** The open room, with its live state; undefined when unknown or closed. */
  async openRoom(id: string): Promise<{ record: RoomRecord; room: Room<null> } | undefined> {
    const record = await this.directory.get(id);
    if (!record?.open) return undefined;
    return { record, room: this.rooms.open(asRoomId(record.id), conferenceRoom) };
  }

  /**
   * Secured mode: false when `request` carries the key `check` accepts, else true once
   * the refusal is sent (401 without a key, 403 with a wrong one). A boolean, not the
   * reply: a reply is thenable, and awaiting it would wait for the response instead.
   */
  async refuseWithout(
    request: FastifyRequest,
    reply: FastifyReply,
    name: string,
    check: (key: string) => Promise<boolean>,
  ): Promise<boolean> {
    if (!this.secureRooms) return false;
    const key = header(request, name);
    if (key && (await check(key))) return false;
    this.log.warn(
      { route: request.routeOptions.url, header: name, given: key !== undefined },
      'bluesky: key refused',
    );
    if (key === undefined)
      fail(reply, 401, `this server's rooms are secured: send the key in the ${name} header`);
    else fail(reply, 403, `wrong ${name} for this room`);
    return true;
  }
}
