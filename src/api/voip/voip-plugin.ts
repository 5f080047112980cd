import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { Config } from '../../config/schema.js';
import type { RoomRegistry } from '../../core/room-registry.js';
import type { AudioHub } from '../../media/audio/audio-hub.js';
import { PcmInput } from '../../media/audio/pcm-input.js';
import { FRAME_MS } from '../../media/audio/pcm-frame.js';
import type { Registry } from 'prom-client';
import type { SocketTracker } from '../surface-context.js';
import type { HeartbeatScheduler } from '../../lib/heartbeat-scheduler.js';
import { ChorusError } from '../../core/errors.js';
import { closeAnswerFor, surfaceErrorHandler } from '../surface-error-handler.js';
import { registerVoipMetrics } from './voip-metrics.js';
import { ChallengeBook, type TicketUse } from './challenge-book.js';
import { EventHub } from './event-hub.js';
import { streamToResponse, streamToWebSocket } from './listen-session.js';
import type { MediaGroup } from './media-group.js';
import { serverPublicKeyHex } from './pkey.js';
import { SideSite } from './side-site.js';
import { uploadFromRequest, uploadFromWebSocket } from './upload-session.js';
import { addFormParsers } from './voip-form-parsers.js';
import { form, VoipAuth, type Caller, type Form } from './voip-auth.js';
import { voipErrors } from './voip-errors.js';
import { VoipCalls } from './voip-calls.js';
import { VoipRooms, type VoipRoom } from './voip-rooms.js';
import { listMembersJson, listRoomJson, newRoomData, parseFormat, type ListenFormat } from './voip-wire.js';
import { VoipSignaling } from './voip-signaling.js';

export interface VoipSurfaceOptions {
  config: Config['voip'];
  /** Calls and group rooms are rooms of the engine's model. */
  rooms: RoomRegistry;
  audio: AudioHub;
  tracker: SocketTracker;
  /** The server's heartbeat wheel: the event streams' keep-alive comments. */
  heartbeats: HeartbeatScheduler;
  registry: Registry;
  log: Logger;
}

const ALL_METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS'] as const;
type Method = (typeof ALL_METHODS)[number];

/** What a media route settled before the upgrade or the stream starts. */
interface MediaPlan {
  me: Caller;
  group: MediaGroup;
  format: ListenFormat;
  input?: { rate: number; channels: number };
  room?: VoipRoom;
  roomKey?: number | string;
}
const plans = new WeakMap<FastifyRequest, MediaPlan>();

/**
 * The VOIP surface (seed 000, gostream): SSE events, the call handshake, calls and
 * rooms with raw PCM in and WAV / Ogg/Opus / raw Opus out. Errors are the original's
 * plain-text bodies. See docs/voip.md.
 */
export const voipPlugin: FastifyPluginAsync<VoipSurfaceOptions> = async (app, opts) => {
  const { config, audio, tracker, log } = opts;
  const mode = config.siteEnabled ? 'site' : 'key';
  const site = config.siteEnabled
    ? new SideSite({
        baseUrl: config.siteUrl,
        timeoutMs: config.siteTimeoutMs,
        cacheSeconds: config.siteCacheSeconds,
        log,
      })
    : undefined;
  const challenges = new ChallengeBook(config.ticketTtlSeconds * 1000, config.challengeTtlSeconds * 1000);
  const auth = new VoipAuth(mode, site, challenges);
  const serverKey = serverPublicKeyHex();
  const events = new EventHub({
    keepAliveMs: config.keepAliveSeconds * 1000,
    heartbeats: opts.heartbeats,
    replayEvents: config.replayEvents,
    replayMs: 5 * 60_000,
    maxQueuedBytes: 256 * 1024,
    log,
  });
  const signaling = new VoipSignaling(mode, events);
  const flushTicks = Math.max(1, Math.round(config.httpFlushMs / FRAME_MS));
  const calls = new VoipCalls(
    opts.rooms,
    audio,
    { ringTimeoutMs: config.ringTimeoutSeconds * 1000, idleTimeoutMs: config.callIdleSeconds * 1000 },
    signaling.notify,
    log,
  );
  const rooms = new VoipRooms(
    opts.rooms,
    audio,
    config.maxRooms,
    config.maxRoomMembers,
    (room, id, mic, hds) => {
      for (const other of room.group.ids()) {
        if (other !== id)
          signaling.notify(other, 'setAudioConf', { from: id, roomid: room.id, in: mic, out: hds });
      }
    },
    (room) => events.broadcast('newRoom', newRoomData(rooms.summary(room))),
  );

  registerVoipMetrics(opts.registry, () => ({
    calls: calls.book.size,
    callsWithMedia: calls.activeMedia,
    rooms: rooms.size,
    eventStreams: events.streamCount,
    mixers: audio.size,
    skippedTicks: audio.skippedTicks,
  }));

  // Before the server waits for its connections to end: event and audio streams never
  // end by themselves.
  app.addHook('preClose', async () => {
    calls.book.close();
    rooms.closeAll();
    events.close();
  });

  // CORS on every answer, hijacked streams included (hence on the raw response).
  app.addHook('onRequest', async (request, reply) => {
    if (mode === 'site') {
      reply.raw.setHeader('Access-Control-Allow-Origin', config.siteOrigin);
      reply.raw.setHeader('Access-Control-Allow-Credentials', 'true');
      reply.raw.setHeader('Vary', 'Origin');
    } else {
      reply.raw.setHeader('Access-Control-Allow-Origin', '*');
    }
    reply.raw.setHeader('Access-Control-Allow-Headers', 'PKey,CSRFToken,Last-Event-ID,Content-Type');
  });

  app.setErrorHandler(surfaceErrorHandler(voipErrors));

  addFormParsers(app);

  /** The original answers any other method (the CORS preflight too) with an empty 200. */
  const route = (
    url: string,
    methods: Method[],
    handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>,
  ) => {
    app.route({ method: methods, url, handler });
    const others = ALL_METHODS.filter(
      (m) => !methods.includes(m) && !(m === 'HEAD' && methods.includes('GET')),
    );
    if (others.length > 0)
      app.route({ method: others, url, handler: async (_req, reply) => reply.code(200).send('') });
  };

  // --- events -------------------------------------------------------------------
  route('/messages', ['GET'], async (request, reply) => {
    const f = form(request);
    const me = await auth.caller(request, { ...f, token: f.CSRFtoken ?? f.token });
    const last = Number(request.headers['last-event-id'] ?? f.lastEventId);
    // Replay (Chorus) is for the stream's owner only: the site's token says who that is;
    // standalone, anyone who knows a key can open its stream (as in the original), so
    // missed events go only to a reader whose `Signature` signs the key's current ticket.
    // Others get live events, and a stale signature is not refused: EventSource would
    // stop reconnecting altogether on a non-200 answer.
    const owner = mode === 'site' || auth.provesKey(me, f.Signature ?? f.signature);
    if (!owner && Number.isSafeInteger(last))
      log.debug({ user: me.id }, 'voip replay withheld: key not proven');
    reply.hijack();
    reply.raw.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    events.open(
      me.id,
      reply.raw,
      `event: pubkey\ndata:${serverKey}\n\n`,
      owner && Number.isSafeInteger(last) ? last : undefined,
    );
    log.debug({ user: me.id }, 'voip event stream open');
  });

  route('/getCallTicket', ['GET'], async (request, reply) => {
    if (mode === 'site') throw new ChorusError('not_found', 'no tickets in side-site mode');
    const me = await auth.caller(request, form(request));
    return reply.type('text/plain').send(challenges.issueTicket(me.id));
  });

  route('/tokenCheck', ['GET'], async (request, reply) => {
    const me = await auth.caller(request, form(request));
    return reply.type('text/plain').send(me.id);
  });

  // --- the call handshake ---------------------------------------------------------
  route('/newCall', ['POST'], async (request, reply) => {
    const f = form(request);
    const me = await auth.caller(request, f, mode === 'key' ? 'newCall' : undefined);
    const dest = auth.party(f.Destination, mode === 'site' ? 'destination id' : 'Destination');
    if (dest === me.id) throw new ChorusError('invalid_argument', 'bad Destination');
    if (mode === 'site') {
      if (!(await site!.mayCall(Number(dest), me.token!))) {
        throw new ChorusError('forbidden', 'mysite.checkAppel API error');
      }
      calls.ring(me.id, dest);
      signaling.notify(dest, 'newCall', { from: me.id });
      return reply.type('text/plain').send('');
    }
    const challenge = signaling.challengeOf(f.challenge);
    challenges.expect(dest, me.id, challenge);
    calls.ring(me.id, dest);
    signaling.notify(dest, 'newCall', { challenge, from: me.id });
    return reply.type('text/plain').send(challenges.issueTicket(me.id));
  });

  /** answer and answer2: relay a signature over the peer's challenge and a new one. */
  const relay = (name: 'answer' | 'answer2') =>
    route(`/${name}`, ['POST'], async (request, reply) => {
      if (mode === 'site') throw new ChorusError('not_found', `no ${name} in side-site mode`);
      const f = form(request);
      const me = await auth.caller(request, f);
      const peer = auth.party(f.Destination, 'Destination');
      const call = calls.book.between(me.id, peer);
      if (call?.state !== 'ringing') throw new ChorusError('not_found', 'call not found');
      const signature = signaling.proveTo(challenges, me, peer, f.signature, `bad ${name} signature`);
      const challenge = signaling.challengeOf(f.challenge);
      challenges.expect(peer, me.id, challenge);
      signaling.notify(peer, name, { answer: signature, challenge, from: me.id });
      return reply.type('text/plain').send('');
    });
  relay('answer');
  relay('answer2');

  const decide = (name: 'acceptCall' | 'rejectCall') =>
    route(`/${name}`, ['POST'], async (request, reply) => {
      const f = form(request);
      const me = await auth.caller(request, f);
      const caller = auth.party(f.From, mode === 'site' ? 'From id' : 'From');
      const ringing = calls.book.between(me.id, caller);
      if (ringing?.state !== 'ringing' || ringing.callee !== me.id)
        throw new ChorusError('not_found', 'call not found');
      let signature = '';
      if (mode === 'key') {
        signature = signaling.proveTo(
          challenges,
          me,
          caller,
          f.signature,
          `bad ${name.toLowerCase()} signature`,
        );
      } else if (name === 'acceptCall' && !(await site!.mayCall(Number(caller), me.token!))) {
        // The original asked this before parsing From, so always about user 0.
        throw new ChorusError('forbidden', 'mysite.checkAppel API error');
      }
      if (name === 'acceptCall') {
        calls.accept(me.id, caller);
        signaling.notify(caller, 'acceptedCall', { answer: signature, challenge: '', from: me.id });
      } else {
        calls.book.reject(me.id, caller);
        signaling.notify(caller, 'declineCall', { answer: signature, from: me.id });
      }
      return reply.type('text/plain').send('');
    });
  decide('acceptCall');
  decide('rejectCall');

  // Chorus: hang up. The other party gets `endCall`.
  route('/endCall', ['POST'], async (request, reply) => {
    const f = form(request);
    const me = await auth.caller(request, f);
    const other = auth.party(f.Destination ?? f.From, 'Destination');
    const call = calls.book.between(me.id, other);
    if (!call) throw new ChorusError('not_found', 'call not found');
    calls.book.end(call, 'hangup');
    return reply.type('text/plain').send('');
  });

  // --- media ------------------------------------------------------------------------
  const pcmFormat = (f: Form) => {
    const rate = f.rate === undefined ? 48_000 : Number(f.rate);
    const channels = f.channels === undefined ? 1 : Number(f.channels);
    if (!Number.isInteger(rate) || rate < 8000 || rate > 192_000)
      throw new ChorusError('invalid_argument', 'bad rate: 8000-192000');
    if (!Number.isInteger(channels) || channels < 1 || channels > 8)
      throw new ChorusError('invalid_argument', 'bad channels: 1-8');
    return { rate, channels };
  };

  /** Settles who, which call or room, and which slot, before any stream starts. */
  const plan = async (request: FastifyRequest, use: TicketUse): Promise<MediaPlan> => {
    const f = form(request);
    const upload = use === 'upCall' || use === 'upRoom';
    const format = upload ? 'wav' : parseFormat(f.format);
    if (!format) throw new ChorusError('invalid_argument', 'bad format: wav, ogg, opus or vorbis');
    const input = upload ? pcmFormat(f) : undefined;
    const me = await auth.caller(request, f, use);
    const slot = upload ? 'mic' : 'hds';
    if (use === 'upCall' || use === 'joinCall') {
      const other = auth.party(f.otherID, 'other id');
      const group = calls.media(me.id, other);
      if (!group) throw new ChorusError('not_found', 'call not found');
      if (group.has(me.id, slot)) throw new ChorusError('conflict', 'user already connected');
      return { me, group, format, ...(input ? { input } : {}) };
    }
    const room = await admitToRoom(me, f.roomID, slot);
    return {
      me,
      group: room.group,
      format,
      room,
      roomKey: mode === 'site' ? room.id : room.name,
      ...(input ? { input } : {}),
    };
  };

  const admitToRoom = async (me: Caller, raw: string | undefined, slot: 'mic' | 'hds'): Promise<VoipRoom> => {
    let key: number | string;
    if (mode === 'site') {
      if (!raw || !/^[0-9]{1,9}$/.test(raw)) throw new ChorusError('invalid_argument', 'bad room id');
      key = Number(raw);
      const ok = await (slot === 'mic'
        ? site!.sendToRoom(Number(raw), me.token!, true)
        : site!.listenToRoom(Number(raw), me.token!, true));
      if (!ok)
        throw new ChorusError(
          'forbidden',
          slot === 'mic' ? 'mysite.newInput API error' : 'mysite.newListener API error',
        );
    } else {
      if (!raw || raw.length < 3 || raw.length > 64 || /\p{Cc}/u.test(raw))
        throw new ChorusError('invalid_argument', 'bad roomName');
      key = raw;
    }
    const room = rooms.grab(key);
    if (!room) throw new ChorusError('capacity', 'too many rooms');
    if (room.group.has(me.id, slot)) throw new ChorusError('conflict', 'user already connected');
    if (room.group.size >= config.maxRoomMembers && !room.group.ids().includes(me.id)) {
      rooms.removeIfEmpty(room);
      throw new ChorusError('capacity', 'room full');
    }
    return room;
  };

  /** Tells the site a room member stopped sending or listening (the `/0` calls). */
  const leftRoom = (p: MediaPlan, slot: 'mic' | 'hds') => {
    if (!site || !p.room || !p.me.token) return;
    const call =
      slot === 'mic'
        ? site.sendToRoom(p.room.id, p.me.token, false)
        : site.listenToRoom(p.room.id, p.me.token, false);
    site.notify(call, slot === 'mic' ? 'envoieAudioGroup/0' : 'ecouteAudioGroup/0');
  };

  /**
   * Takes the slot in the plan's call or room. Between the plan and now (a WebSocket
   * upgrade) the call may have ended, or the room emptied and gone: a room is then
   * opened again, a call is not found.
   */
  const occupy = (p: MediaPlan, slot: 'mic' | 'hds', closer: () => void): void => {
    if (p.group.closed && p.roomKey !== undefined) {
      const room = rooms.grab(p.roomKey);
      if (!room) throw new ChorusError('capacity', 'too many rooms');
      p.room = room;
      p.group = room.group;
    }
    if (p.group.closed) throw new ChorusError('not_found', 'call not found');
    if (!p.group.occupy(p.me.id, slot, closer)) throw new ChorusError('conflict', 'user already connected');
  };

  /** After an upgrade a refusal can only be a close frame: 1008 with the original's text. */
  const orClose = (socket: WebSocket, start: () => void) => {
    try {
      start();
    } catch (err) {
      const { code, reason } = closeAnswerFor(voipErrors, err, log);
      socket.close(code, reason);
    }
  };

  const startUpload = (p: MediaPlan, run: (input: PcmInput, done: () => void) => () => void) => {
    let stop = () => undefined as void;
    const closer = () => stop();
    occupy(p, 'mic', closer);
    const input = new PcmInput(p.input, config.inputBufferMs);
    p.group.mixer.addInput(p.me.id, input);
    stop = run(input, () => {
      p.group.mixer.removeInput(p.me.id);
      p.group.release(p.me.id, 'mic', closer);
      leftRoom(p, 'mic');
    });
  };

  const startListen = (p: MediaPlan, run: (done: () => void) => () => void) => {
    let stop = () => undefined as void;
    const closer = () => stop();
    occupy(p, 'hds', closer);
    stop = run(() => {
      p.group.release(p.me.id, 'hds', closer);
      leftRoom(p, 'hds');
    });
  };

  const uploadRoute = (url: string, use: TicketUse) => {
    app.route({
      method: 'GET',
      url,
      preHandler: async (request) => {
        if (request.ws) plans.set(request, await plan(request, use));
      },
      handler: async (_request, reply) =>
        reply.code(426).type('text/plain').send('WebSocket or POST expected\n'),
      wsHandler: (socket: WebSocket, request) => {
        tracker.track('voip', socket);
        orClose(socket, () =>
          startUpload(plans.get(request)!, (input, done) =>
            uploadFromWebSocket(socket, input, config.maxUploadFrameBytes, done),
          ),
        );
      },
    });
  };

  const listenRoute = (url: string, use: TicketUse) => {
    const serve = async (request: FastifyRequest, reply: FastifyReply) => {
      const p = await plan(request, use);
      startListen(p, (done) => {
        reply.hijack();
        reply.raw.writeHead(200, {
          'Content-Type': p.format === 'wav' ? 'audio/wav' : 'audio/ogg',
          'Cache-Control': 'no-store',
          'X-Accel-Buffering': 'no',
        });
        return streamToResponse(reply.raw, p.format, p.group.mixer, p.me.id, flushTicks, done);
      });
    };
    app.route({ method: 'POST', url, handler: serve });
    app.route({
      method: 'GET',
      url,
      preHandler: async (request) => {
        if (request.ws) plans.set(request, await plan(request, use));
      },
      handler: serve,
      wsHandler: (socket: WebSocket, request) => {
        tracker.track('voip', socket);
        const p = plans.get(request)!;
        orClose(socket, () =>
          startListen(p, (done) => streamToWebSocket(socket, p.group.mixer, p.me.id, done)),
        );
      },
    });
  };

  // Uploads: the raw body is the audio, so these POST routes take any content type
  // unparsed, in their own context.
  await app.register(async (raw) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_req, _payload, done) => done(null));
    for (const [url, use] of [
      ['/upCall', 'upCall'],
      ['/upRoom', 'upRoom'],
    ] as const) {
      // PUT as well: `curl -T -` streams stdin with PUT.
      raw.route({
        method: ['POST', 'PUT'],
        url,
        // A live body: no whole-request deadline, closed when idle instead.
        config: { bodyIdleTimeoutMs: config.uploadIdleSeconds * 1000 },
        handler: async (request, reply) => {
          const p = await plan(request, use);
          const complete = await new Promise<boolean>((resolve) =>
            startUpload(p, (input, done) =>
              uploadFromRequest(request.raw, input, (whole) => {
                done();
                resolve(whole);
              }),
            ),
          );
          // A body cut short (client gone, call ended) has nobody left to answer.
          return complete ? reply.type('text/plain').send('') : reply;
        },
      });
    }
  });
  uploadRoute('/upCall', 'upCall');
  uploadRoute('/upRoom', 'upRoom');
  listenRoute('/joinCall', 'joinCall');
  listenRoute('/joinRoom', 'joinRoom');
  for (const url of ['/upCall', '/upRoom', '/joinCall', '/joinRoom']) {
    app.route({
      method: url.startsWith('/up') ? ['OPTIONS', 'DELETE', 'PATCH'] : ['OPTIONS', 'PUT', 'DELETE', 'PATCH'],
      url,
      handler: async (_r, reply) => reply.send(''),
    });
  }

  // --- rooms --------------------------------------------------------------------------
  app.all('/listRoom', async (_request, reply) =>
    reply.type('application/json').send(listRoomJson(rooms.list())),
  );

  app.all('/listMembers', async (request, reply) => {
    const raw = form(request).roomID;
    const room =
      raw === undefined ? undefined : /^[0-9]+$/.test(raw) ? rooms.find(Number(raw)) : rooms.find(raw);
    if (raw === undefined || raw === '') throw new ChorusError('invalid_argument', 'bad room id');
    if (!room) throw new ChorusError('not_found', 'room not found');
    return reply.type('application/json').send(listMembersJson(room.group.list()));
  });

  log.info({ mode }, 'voip surface ready');
};
