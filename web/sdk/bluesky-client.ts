/**
 * Browser client of the Blue Sky surface: rooms over REST, one peer connection per
 * direction (publish mine, receive each other publisher), non-trickle SDP in the
 * original's `{"sdp": base64(json(description))}` encoding.
 */
export interface RoomInfo {
  id: string;
  admin: string;
  publishers: string[];
}

export class BlueSkyError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** From `Retry-After` on a 503 (server full or overloaded): when to try again. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }

  /** The server refused for load, not for the request: the same request may work later. */
  get busy(): boolean {
    return this.status === 503;
  }
}

const encode = (d: RTCSessionDescriptionInit): string => btoa(JSON.stringify({ type: d.type, sdp: d.sdp }));
const decode = (s: string): RTCSessionDescriptionInit => JSON.parse(atob(s)) as RTCSessionDescriptionInit;

async function json<T>(res: Response): Promise<T> {
  const body = (await res.json().catch(() => ({}))) as T & { error?: string };
  if (!res.ok) {
    const retry = Number(res.headers.get('retry-after'));
    throw new BlueSkyError(
      res.status,
      body.error ?? `HTTP ${res.status}`,
      Number.isFinite(retry) && retry > 0 ? retry : undefined,
    );
  }
  return body;
}

/** The keys a server with secured rooms hands out (none otherwise). */
interface Keys {
  admin?: string | undefined;
  participant?: string | undefined;
}

export class BlueSkyClient {
  /** Per room: the keys this client was given, sent back as headers. */
  private readonly keys = new Map<string, Keys>();

  constructor(private readonly base = '') {}

  async createRoom(admin: string): Promise<string> {
    const res = await fetch(`${this.base}/webrtc/room`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: admin }),
    });
    const created = await json<{ id: string; admin_key?: string; participant_key?: string }>(res);
    this.keys.set(created.id, { admin: created.admin_key, participant: created.participant_key });
    return created.id;
  }

  /**
   * Joins a room someone else created: with secured rooms this claims `user` in it and
   * keeps the key its media requests need (409 when the name is taken); otherwise it only
   * checks the room exists.
   */
  async joinRoom(id: string, user: string): Promise<void> {
    const res = await fetch(`${this.base}/webrtc/room/${encodeURIComponent(id)}/join`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: user }),
    });
    const joined = await json<{ participant_key?: string }>(res);
    this.keys.set(id, { participant: joined.participant_key });
  }

  private keyHeaders(room: string, which: keyof Keys): Record<string, string> {
    const key = this.keys.get(room)?.[which];
    if (!key) return {};
    return which === 'admin' ? { 'x-admin-key': key } : { 'x-participant-key': key };
  }

  async listRooms(): Promise<string[]> {
    return json<string[]>(await fetch(`${this.base}/webrtc/room`));
  }

  async room(id: string): Promise<RoomInfo> {
    return json<RoomInfo>(await fetch(`${this.base}/webrtc/room/${encodeURIComponent(id)}`));
  }

  async closeRoom(id: string, admin: string): Promise<void> {
    const res = await fetch(`${this.base}/webrtc/room/${encodeURIComponent(id)}`, {
      method: 'DELETE',
      headers: { 'content-type': 'application/json', ...this.keyHeaders(id, 'admin') },
      body: JSON.stringify({ user_id: admin }),
    });
    if (!res.ok) await json(res);
  }

  /** Offers, waits for every candidate (the server does not trickle), posts, applies the answer. */
  async negotiate(
    pc: RTCPeerConnection,
    room: string,
    me: string,
    peer: string,
    sender: boolean,
  ): Promise<void> {
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise<void>((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const done = (): void => {
        if (pc.iceGatheringState === 'complete') {
          pc.removeEventListener('icegatheringstatechange', done);
          resolve();
        }
      };
      pc.addEventListener('icegatheringstatechange', done);
      setTimeout(resolve, 3000); // enough candidates by then on any real network
    });
    const path = `/webrtc/sdp/m/${encodeURIComponent(room)}/c/${encodeURIComponent(me)}/p/${encodeURIComponent(peer)}/s/${sender}`;
    const res = await fetch(`${this.base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...this.keyHeaders(room, 'participant') },
      body: JSON.stringify({ sdp: encode(pc.localDescription!) }),
    });
    const { sdp } = await json<{ sdp: string }>(res);
    await pc.setRemoteDescription(decode(sdp));
  }
}
