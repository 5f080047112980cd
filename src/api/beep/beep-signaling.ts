import type { WebSocket } from 'ws';
import type { Logger } from 'pino';
import type { VoicePeer } from '../../media/webrtc/voice-peer.js';
import { closeAnswerFor } from '../surface-error-handler.js';
import { beepErrors } from './beep-errors.js';

/** Close codes after the upgrade: the reason says what failed. */
const BAD_OFFER = 1007;
const FAILED = 1011;
/** How long the socket may stay open without the peer connecting. */
const CONNECT_TIMEOUT_MS = 30_000;

/**
 * SDP exchange over the `/connect` WebSocket, in both styles Beep clients use:
 * - the README's: one bare SDP offer (candidates gathered), one bare SDP answer;
 * - the original code's tagged frames: `offer::<sdp>` in, `answer::<sdp>` out, then the
 *   client's trickled `<tag>::candidate:...` frames (our candidates are in the answer).
 * The socket closes (1000) once the peer connection is established.
 */
export function runSignaling(socket: WebSocket, peer: VoicePeer, log: Logger): void {
  let tagged = false;
  let answered = false;
  let mid = '0';
  const timer = setTimeout(
    () => socket.close(FAILED, 'peer connection not established in time'),
    CONNECT_TIMEOUT_MS,
  );
  timer.unref();
  const closeWith = (code: number, reason: string) => {
    clearTimeout(timer);
    if (socket.readyState === socket.OPEN) socket.close(code, reason.slice(0, 120));
  };
  // The peer's own events end the exchange (they run inside its guarded state callback):
  // connected closes the socket with 1000, a failed or closed peer with 1011.
  const offConnected = peer.leg.onConnected(() => closeWith(1000, 'connected'));
  const offClosed = peer.leg.onClose(() => closeWith(FAILED, 'peer connection failed'));
  socket.once('close', () => {
    clearTimeout(timer);
    // The peer outlives its signalling socket: it must not keep the socket referenced.
    offConnected();
    offClosed();
    // A socket that goes before the exchange finished leaves nothing behind.
    if (!answered) peer.close('signalling socket closed before the answer');
  });

  socket.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) return closeWith(BAD_OFFER, 'expected text frames');
    const text = data.toString('utf8');
    const tag = /^([A-Za-z0-9_-]{1,32})::/.exec(text);
    if (!answered && !tag) return void answer(text);
    if (!answered && tag?.[1] === 'offer') {
      tagged = true;
      return void answer(text.slice(tag[0].length));
    }
    if (tagged && tag) {
      const candidate = text.slice(tag[0].length).trim();
      if (!candidate.startsWith('candidate:') && !candidate.startsWith('a=candidate:')) return;
      try {
        peer.addRemoteCandidate(candidate, mid);
      } catch (err) {
        log.debug({ err }, 'beep: remote candidate refused');
      }
    }
  });

  const answer = async (offer: string) => {
    answered = true;
    try {
      mid = /^a=mid:(\S+)/m.exec(offer)?.[1] ?? '0';
      const sdp = await peer.answer(offer);
      if (socket.readyState !== socket.OPEN) return;
      socket.send(tagged ? `answer::${sdp}` : sdp);
    } catch (err) {
      // A client's bad offer is a warn line without a stack and a 1007; anything else 1011.
      const { code, reason } = closeAnswerFor(beepErrors, err, log);
      offClosed(); // this socket's close code says why, not "peer connection failed"
      peer.close('offer refused');
      closeWith(code, reason);
    }
  };
}
