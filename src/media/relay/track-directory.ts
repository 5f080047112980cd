import { z } from 'zod';
import type { KvBucket, Store } from '../../ports/store/store.js';
import { RELAY_ID } from './relay-subjects.js';
import { MAX_LAYERS } from '../webrtc/simulcast-sdp.js';
import { VIDEO_CODECS } from '../webrtc/codec-policy.js';

/** One published track as other nodes need it to forward it: kind, codec, relay id. */
export const relayedTrackSchema = z.object({
  relay: z.string().regex(RELAY_ID),
  kind: z.enum(['audio', 'video']),
  codec: z.object({
    kind: z.enum(['audio', 'video']),
    name: z.enum(['opus', ...VIDEO_CODECS]),
    payloadType: z.number().int().min(0).max(127),
    clockRate: z.number().int().positive(),
    fmtp: z.string().max(512).optional(),
  }),
  /** Opus RED payload type the publisher sends (#18): RED packets are relayed as sent. */
  red: z.number().int().min(0).max(127).optional(),
  /** Simulcast: how many layers the track has (the relay carries them all). */
  layers: z.number().int().min(2).max(MAX_LAYERS).optional(),
});
export type RelayedTrack = z.infer<typeof relayedTrackSchema>;

/** Who publishes in a room, from which node (and process), and which tracks. */
export const publicationSchema = z.object({
  node: z.string().min(1).max(128),
  instance: z.string().max(128),
  tracks: z.array(relayedTrackSchema).max(16),
});
export type Publication = z.infer<typeof publicationSchema>;

/** A store key from any id: base64url is inside the store's alphabet and never has dots. */
const token = (s: string): string => Buffer.from(s, 'utf8').toString('base64url');
const untoken = (s: string): string => Buffer.from(s, 'base64url').toString('utf8');

const PAGE = 200;

/**
 * The cluster-wide directory of published tracks (store bucket `sfu-tracks`): one record
 * per room and publisher, written by the node carrying the publisher's leg, read by a
 * node asked to subscribe someone to a publisher it does not carry. Records are claims,
 * not proof: a reader checks that the node named is alive (and the relay answers).
 */
export class TrackDirectory {
  private readonly bucket: KvBucket<unknown>;

  constructor(store: Store) {
    this.bucket = store.bucket<unknown>('sfu-tracks');
  }

  private static key(room: string, user: string): string {
    return `${token(room)}.${token(user)}`;
  }

  async announce(room: string, user: string, publication: Publication): Promise<void> {
    await this.bucket.put(TrackDirectory.key(room, user), publication);
  }

  /** The record of `user` in `room`; undefined when absent or not of the shape. */
  async find(room: string, user: string): Promise<Publication | undefined> {
    const raw = await this.bucket.get(TrackDirectory.key(room, user));
    const parsed = publicationSchema.safeParse(raw);
    return parsed.success ? parsed.data : undefined;
  }

  /**
   * Removes the record if it still is the one `relayIds` were announced in: a publisher
   * that republished on another node meanwhile keeps its newer record.
   */
  async withdraw(room: string, user: string, relayIds: readonly string[]): Promise<void> {
    const key = TrackDirectory.key(room, user);
    const entry = await this.bucket.entry(key);
    if (!entry) return;
    const parsed = publicationSchema.safeParse(entry.value);
    if (parsed.success && !parsed.data.tracks.some((t) => relayIds.includes(t.relay))) return;
    // Only the record read: one written since (the publisher back on another node) stays.
    await this.bucket.deleteIf(key, entry.revision);
  }

  /** The publishers of `room` with their records (in bounded pages of keys). */
  async publishersOf(room: string): Promise<Array<{ user: string; publication: Publication }>> {
    const prefix = `${token(room)}.`;
    const out: Array<{ user: string; publication: Publication }> = [];
    // In key order the room's keys follow its token; other rooms' tokens that start with
    // it (then `-` or `_`, which sort before and after the dot) may come first.
    let after: string | undefined = token(room);
    for (;;) {
      const keys = await this.bucket.keysPage(after, PAGE);
      for (const k of keys) {
        if (!k.startsWith(prefix)) {
          if (k < prefix) continue;
          return out;
        }
        const parsed = publicationSchema.safeParse(await this.bucket.get(k));
        if (parsed.success) out.push({ user: untoken(k.slice(prefix.length)), publication: parsed.data });
      }
      if (keys.length < PAGE) return out;
      after = keys[keys.length - 1];
    }
  }
}
