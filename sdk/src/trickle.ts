import { completeOffer } from './ice-gathering.js';

/** One trickled item for a leg: a candidate with its section, or the end of them. */
export type TrickleItem = { candidate: string; sdpMid?: string } | { end: true };

/**
 * What a peer connection's owner is given to send its candidates with: `undefined` when
 * the server takes no trickled candidates (its `join` had no `trickle`), so offers wait
 * for gathering as before.
 */
export type TrickleSend = ((item: TrickleItem) => void) | undefined;

/**
 * Creates and applies `pc`'s offer. With `send` (trickle ICE), the offer is returned at
 * once and every candidate `pc` gathers goes to `send` after `started()` is called (those
 * gathered before wait for it: the server must have the offer first), then the end of
 * them. Without, the offer is returned once gathering completed, carrying every candidate.
 */
export async function offerFor(
  pc: RTCPeerConnection,
  send: TrickleSend,
): Promise<{ sdp: string; started(): void }> {
  if (!send) return { sdp: await completeOffer(pc), started: () => undefined };
  const held: TrickleItem[] = [];
  let live = false;
  let ended = false;
  const forward = (item: TrickleItem): void => {
    if (pc.signalingState === 'closed') return;
    if (live) send(item);
    else held.push(item);
  };
  pc.addEventListener('icecandidate', (ev) => {
    if (ended) return;
    // null (or '' in older browsers): gathering is over.
    if (!ev.candidate || ev.candidate.candidate === '') {
      ended = true;
      forward({ end: true });
      return;
    }
    forward({
      candidate: ev.candidate.candidate,
      ...(ev.candidate.sdpMid ? { sdpMid: ev.candidate.sdpMid } : {}),
    });
  });
  await pc.setLocalDescription(await pc.createOffer());
  const sdp = pc.localDescription?.sdp;
  if (!sdp) throw new Error('the peer connection has no local description');
  return {
    sdp,
    started: () => {
      live = true;
      for (const item of held.splice(0)) forward(item);
    },
  };
}
