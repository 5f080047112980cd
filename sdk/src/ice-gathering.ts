/**
 * For servers that take no trickled candidates (and `trickleIce: false`): an offer must carry all of the client's.
 * Resolves once `pc` has gathered them, or after `timeoutMs` with what it has (on a
 * network with a dead STUN route gathering can take long; host candidates are there).
 */
export function iceGatheringComplete(pc: RTCPeerConnection, timeoutMs = 5000): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = (): void => {
      if (pc.iceGatheringState === 'complete') done();
    };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

/** Creates an offer, applies it, waits for every candidate, and returns the complete SDP. */
export async function completeOffer(pc: RTCPeerConnection, timeoutMs?: number): Promise<string> {
  await pc.setLocalDescription(await pc.createOffer());
  await iceGatheringComplete(pc, timeoutMs);
  const sdp = pc.localDescription?.sdp;
  if (!sdp) throw new Error('the peer connection has no local description');
  return sdp;
}
