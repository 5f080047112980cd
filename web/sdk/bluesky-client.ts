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

export class BlueSkyClient {
  constructor(private readonly base = '') {}

  async createRoom(admin: string): Promise<string> {
    const res = await fetch(`${this.base}/webrtc/room`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: admin }),
    });
    return (await json<{ id: string }>(res)).id;
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
      headers: { 'content-type': 'application/json' },
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
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sdp: encode(pc.localDescription!) }),
    });
    const { sdp } = await json<{ sdp: string }>(res);
    await pc.setRemoteDescription(decode(sdp));
  }
}
