/**
 * The original's event payloads and JSON replies, byte for byte where clients parse
 * them (field order, the space after each colon, `in`/`out` as strings), but built
 * with a serializer, so names and descriptions are escaped.
 */
export type EventName =
  'newCall' | 'declineCall' | 'acceptedCall' | 'answer' | 'answer2' | 'setAudioConf' | 'newRoom' | 'endCall';

export interface EventFields {
  from: string;
  /** Standalone: the signature relayed to the peer (all events but newCall). */
  answer?: string;
  /** Standalone: the challenge relayed to the peer (all events but declineCall). */
  challenge?: string;
  roomid?: number;
  in?: boolean;
  out?: boolean;
}

const j = JSON.stringify;

/** `{"k": v,"k2": v2}`: the original's spacing. */
function object(entries: [string, string][]): string {
  return `{${entries.map(([k, v]) => `${j(k)}: ${v}`).join(',')}}`;
}

function withConf(entries: [string, string][], f: EventFields): [string, string][] {
  if (f.roomid !== undefined && f.roomid > 0) entries.push(['roomid', j(String(f.roomid))]);
  if (f.in !== undefined) entries.push(['in', j(f.in ? '1' : '0')], ['out', j(f.out ? '1' : '0')]);
  return entries;
}

/** Side-site mode: plain JSON, `from` an integer. */
export function siteEventData(name: EventName, f: EventFields): string {
  const entries: [string, string][] = [['from', String(Number(f.from))]];
  return object(name === 'setAudioConf' ? withConf(entries, f) : entries);
}

/** Standalone mode: the JSON text, hex-encoded, as a JSON string. */
export function keyEventData(name: EventName, f: EventFields): string {
  const entries: [string, string][] = [];
  if (name !== 'newCall') entries.push(['answer', j(f.answer ?? '')]);
  if (name !== 'declineCall') entries.push(['challenge', j(f.challenge ?? '')]);
  entries.push(['from', j(f.from)]);
  return hexWrap(object(name === 'setAudioConf' ? withConf(entries, f) : entries));
}

export function hexWrap(json: string): string {
  return j(Buffer.from(json, 'utf8').toString('hex'));
}

export interface RoomSummary {
  id: number;
  name: string;
  type: string;
  desc: string;
  count: number;
}

/** `newRoom` is always in the hex form (it carries no user id). */
export function newRoomData(r: RoomSummary): string {
  return hexWrap(
    object([
      ['roomid', String(r.id)],
      ['name', j(r.name)],
      ['type', j(r.type)],
      ['desc', j(r.desc)],
      ['count', String(r.count)],
    ]),
  );
}

export function listRoomJson(rooms: readonly RoomSummary[]): string {
  return `[${rooms
    .map((r) =>
      object([
        ['id', String(r.id)],
        ['name', j(r.name)],
        ['desc', j(r.desc)],
        ['count', String(r.count)],
      ]),
    )
    .join(',')}]`;
}

export function listMembersJson(members: readonly { id: string; mic: boolean; hds: boolean }[]): string {
  return `[${members
    .map((m) =>
      object([
        ['pubkey', j(m.id)],
        ['mic', m.mic ? '1' : '0'],
        ['hds', m.hds ? '1' : '0'],
      ]),
    )
    .join(',')}]`;
}

/** What `format` asks for (case-insensitive, default opus); see docs/voip.md. */
export type ListenFormat = 'wav' | 'ogg';

export function parseFormat(raw: unknown): ListenFormat | undefined {
  if (raw === undefined || raw === '') return 'ogg';
  if (typeof raw !== 'string') return undefined;
  switch (raw.toLowerCase()) {
    case 'wav':
      return 'wav';
    case 'opus':
    case 'ogg':
    case 'vorbis':
      return 'ogg';
    default:
      return undefined;
  }
}
