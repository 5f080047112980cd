import { EventEmitter } from 'node:events';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { WebSocket } from 'ws';
import { runSignaling } from '../../src/api/beep/beep-signaling.js';
import { parseOffer } from '../../src/media/webrtc/sdp-validation.js';
import type { VoicePeer } from '../../src/media/webrtc/voice-peer.js';

/** The parts of a ws socket runSignaling uses; `close` records and emits 'close' later, as ws does. */
class FakeSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  closedWith: { code: number; reason: string } | undefined;
  sent: string[] = [];
  send(text: string): void {
    this.sent.push(text);
  }
  close(code: number, reason: string): void {
    if (this.readyState !== 1) return;
    this.readyState = 2;
    this.closedWith = { code, reason };
  }
  /** The close handshake finished (or the client went). */
  gone(): void {
    this.readyState = 3;
    this.emit('close', 1000, Buffer.alloc(0));
  }
}

/**
 * A fake of node-datachannel's side: a leg whose state events the test fires, with the
 * same subscription API as PeerLeg (handlers counted, to see that nothing is left behind).
 */
class FakeLeg {
  closed = false;
  connectedHandlers: Array<() => void> = [];
  closeHandlers: Array<() => void> = [];
  onConnected(fn: () => void): () => void {
    this.connectedHandlers.push(fn);
    return () => (this.connectedHandlers = this.connectedHandlers.filter((f) => f !== fn));
  }
  onClose(fn: () => void): () => void {
    this.closeHandlers.push(fn);
    return () => (this.closeHandlers = this.closeHandlers.filter((f) => f !== fn));
  }
  connect(): void {
    for (const fn of this.connectedHandlers.splice(0)) fn();
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.connectedHandlers = [];
    for (const fn of this.closeHandlers.splice(0)) fn();
  }
}

const OFFER = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n';

function setUp() {
  const socket = new FakeSocket();
  const leg = new FakeLeg();
  const peer = {
    leg,
    // The real offer validation, so a refused offer carries the error type the SFU throws.
    answer: async (offer: string) => {
      if (offer !== OFFER) parseOffer(offer);
      return 'v=0 answer';
    },
    close: () => leg.close(),
    addRemoteCandidate: () => undefined,
  };
  runSignaling(socket as unknown as WebSocket, peer as unknown as VoicePeer, pino({ level: 'silent' }));
  return { socket, leg };
}

describe('Beep signalling', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('closes the socket with 1000 when the peer connects: on the event, with no polling timer', () => {
    const { socket, leg } = setUp();
    expect(vi.getTimerCount()).toBe(1); // only the connect deadline
    socket.emit('message', Buffer.from(OFFER), false);
    leg.connect();
    expect(socket.closedWith).toEqual({ code: 1000, reason: 'connected' });
    socket.gone();
    expect(vi.getTimerCount()).toBe(0);
    // The peer lives on in its conversation; it must not keep the socket referenced.
    expect(leg.closeHandlers).toHaveLength(0);
  });

  it('closes the socket with 1011 when the peer fails or closes first', () => {
    const { socket, leg } = setUp();
    socket.emit('message', Buffer.from(OFFER), false);
    leg.close();
    expect(socket.closedWith).toEqual({ code: 1011, reason: 'peer connection failed' });
  });

  it('closes a refused offer with 1007 and its reason, not as a failed peer', async () => {
    const { socket, leg } = setUp();
    socket.emit('message', Buffer.from('not an offer'), false);
    await vi.waitFor(() => expect(socket.closedWith).toBeDefined());
    expect(socket.closedWith!.code).toBe(1007);
    expect(socket.closedWith!.reason).not.toBe('peer connection failed');
    expect(leg.closed).toBe(true);
  });

  it('still gives up on a peer that never connects, at the deadline', () => {
    const { socket } = setUp();
    socket.emit('message', Buffer.from(OFFER), false);
    vi.advanceTimersByTime(30_000);
    expect(socket.closedWith).toEqual({ code: 1011, reason: 'peer connection not established in time' });
  });

  it('closing the socket before the answer closes the peer', () => {
    const { socket, leg } = setUp();
    socket.gone();
    expect(leg.closed).toBe(true);
    expect(leg.connectedHandlers).toHaveLength(0);
  });
});
