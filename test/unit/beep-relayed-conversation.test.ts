import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ThrottledLog } from '../../src/lib/throttled-log.js';
import type { Bus } from '../../src/ports/bus/bus.js';
import { LocalBus } from '../../src/ports/bus/local-bus.js';
import type { RemoteVoices } from '../../src/media/webrtc/voice-conference.js';
import {
  RelayedConversation,
  memberToken,
  type PacketCount,
  type RelayNode,
} from '../../src/api/beep/relayed-conversation.js';

/*
 * The relay's bookkeeping on one bus shared by several "nodes" (the in-process bus
 * delivers synchronously, so every step's effect can be read at once): who holds a
 * conversation, who publishes, when remote speakers come and go.
 */
const log = pino({ level: 'silent' });

class FakeNode implements RelayNode {
  readonly busLog = new ThrottledLog(log);
  readonly received = new Map<string, PacketCount>();
  sentPackets = 0;
  constructor(
    readonly bus: Bus,
    readonly self: { node: string; instance: string },
    readonly alive: Set<string>,
  ) {}
  sent(): void {
    this.sentPackets++;
  }
  receivedFrom(node: string): PacketCount {
    let c = this.received.get(node);
    if (!c) this.received.set(node, (c = { n: 0 }));
    return c;
  }
  isAlive(node: string): boolean {
    return this.alive.has(node);
  }
}

/** What a conference would be told: its remote speakers and the bytes each wrote. */
class Voices implements RemoteVoices {
  readonly speakers = new Map<string, number[]>();
  addSpeaker(key: string): (opus: Uint8Array) => void {
    const got: number[] = [];
    this.speakers.set(key, got);
    return (opus) => got.push(opus[0]!);
  }
  removeSpeaker(key: string): void {
    this.speakers.delete(key);
  }
}

function setup(names: string[]) {
  const bus = new LocalBus(log);
  const alive = new Set(names);
  const audio: string[] = [];
  bus.subscribe('chorus.beep.conv.*.audio.>', (m) => audio.push(m.subject));
  const node = (name: string, instance = 'i1') => new FakeNode(bus, { node: name, instance }, alive);
  const open = (n: FakeNode, conversation = 'c') => {
    const voices = new Voices();
    return { voices, conv: new RelayedConversation(n, conversation, voices) };
  };
  return { bus, alive, audio, node, open };
}

const packet = (b: number) => Buffer.from([b, 1, 2, 3]);

describe('RelayedConversation', () => {
  it('alone on its node it publishes nothing', () => {
    const { audio, node, open } = setup(['a']);
    const a = node('a');
    const { conv } = open(a);
    conv.send('ann\u0000web', packet(1));
    expect(audio).toEqual([]);
    expect(a.sentPackets).toBe(0);
  });

  it('two nodes find each other at once; each speaker is published once and heard only by the other node', () => {
    const { audio, node, open } = setup(['a', 'b', 'c']);
    const [a, b, c] = [node('a'), node('b'), node('c')];
    const A = open(a);
    const B = open(b);
    const C = open(c);
    expect([A.conv.peerCount, B.conv.peerCount, C.conv.peerCount]).toEqual([2, 2, 2]);
    A.conv.send('ann\u0000web', packet(7));
    A.conv.send('ann\u0000web', packet(8));
    expect(audio).toEqual([
      `chorus.beep.conv.c.audio.a.${memberToken('ann\u0000web')}`,
      `chorus.beep.conv.c.audio.a.${memberToken('ann\u0000web')}`,
    ]);
    expect(a.sentPackets).toBe(2);
    expect([...B.voices.speakers.values()]).toEqual([[7, 8]]);
    expect([...C.voices.speakers.values()]).toEqual([[7, 8]]);
    expect(A.voices.speakers.size).toBe(0);
    expect(b.received.get('a')!.n).toBe(2);
  });

  it('a member who leaves, a node that closes, a node gone: the speakers go', () => {
    const { node, open } = setup(['a', 'b']);
    const [a, b] = [node('a'), node('b')];
    const A = open(a);
    const B = open(b);
    A.conv.send('ann\u0000web', packet(1));
    A.conv.send('dan\u0000web', packet(2));
    expect(B.voices.speakers.size).toBe(2);
    A.conv.memberLeft('ann\u0000web');
    expect(B.voices.speakers.size).toBe(1);
    B.conv.nodeGone('a', 'another-instance');
    expect(B.voices.speakers.size).toBe(1);
    B.conv.nodeGone('a', 'i1');
    expect([B.voices.speakers.size, B.conv.peerCount]).toEqual([0, 0]);
    // A's next word brings it back; its close takes it away again.
    A.conv.refresh(Date.now(), 15_000, 3000, true);
    A.conv.send('dan\u0000web', packet(3));
    expect([B.conv.peerCount, B.voices.speakers.size]).toEqual([1, 1]);
    A.conv.close();
    expect([B.conv.peerCount, B.voices.speakers.size]).toEqual([0, 0]);
  });

  it('a node restarted under its id: what the old process sent is over', () => {
    const { node, open } = setup(['a', 'b']);
    const B = open(node('b'));
    const A1 = open(node('a', 'old'));
    A1.conv.send('ann\u0000web', packet(1));
    expect(B.voices.speakers.size).toBe(1);
    const A2 = open(node('a', 'new'));
    expect([B.conv.peerCount, B.voices.speakers.size]).toEqual([1, 0]);
    A2.conv.send('ann\u0000web', packet(2));
    expect([...B.voices.speakers.values()]).toEqual([[2]]);
  });

  it('forgets silent speakers and nodes that stopped announcing', () => {
    const { node, open } = setup(['a', 'b']);
    const A = open(node('a'));
    const B = open(node('b'));
    A.conv.send('ann\u0000web', packet(1));
    const now = Date.now();
    B.conv.refresh(now + 1000, 15_000, 3000, false);
    expect(B.voices.speakers.size).toBe(1);
    B.conv.refresh(now + 4000, 15_000, 3000, false);
    expect([B.voices.speakers.size, B.conv.peerCount]).toEqual([0, 1]);
    B.conv.refresh(now + 16_000, 15_000, 3000, false);
    expect(B.conv.peerCount).toBe(0);
  });

  it('drops announcements of unknown nodes, audio for no member, oversized packets, and speakers past 256', () => {
    const { bus, node, open } = setup(['a', 'b']);
    const B = open(node('b'));
    bus.publish(
      'chorus.beep.conv.c.nodes',
      JSON.stringify({ node: 'x', instance: '1', here: true, hello: true }),
    );
    bus.publish('chorus.beep.conv.c.nodes', '{"node":');
    expect(B.conv.peerCount).toBe(0);
    open(node('a'));
    expect(B.conv.peerCount).toBe(1);
    bus.publish('chorus.beep.conv.c.audio.a.no!member', packet(1));
    bus.publish(`chorus.beep.conv.c.audio.a.${memberToken('x\u0000y')}`, Buffer.alloc(1501));
    bus.publish('chorus.beep.conv.c.audio.x.YQ', packet(1));
    expect(B.voices.speakers.size).toBe(0);
    for (let i = 0; i < 300; i++)
      bus.publish(`chorus.beep.conv.c.audio.a.${memberToken(`u${i}\u0000w`)}`, packet(1));
    expect(B.voices.speakers.size).toBe(256);
  });
});
