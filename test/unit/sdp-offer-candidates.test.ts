import { describe, expect, it } from 'vitest';
import { offerWithoutCandidates } from '../../src/media/webrtc/sdp.js';

const offer = [
  'v=0',
  'o=- 1 1 IN IP4 0.0.0.0',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0',
  'm=video 9 UDP/TLS/RTP/SAVPF 96',
  'c=IN IP4 0.0.0.0',
  'a=mid:0',
  'a=ice-ufrag:abcd',
  'a=ice-pwd:0123456789abcdef012345',
  'a=fingerprint:sha-256 AA:BB',
  'a=setup:actpass',
  'a=rtpmap:96 VP8/90000',
  'a=candidate:1 1 UDP 2122317823 127.0.0.1 50000 typ host',
  'a=candidate:2 1 UDP 2122317823 abcd.local 50001 typ host',
  'a=end-of-candidates',
  '',
].join('\r\n');

describe('offerWithoutCandidates (#18.7)', () => {
  it("drops the offerer's candidates and nothing else", () => {
    const out = offerWithoutCandidates(offer);
    expect(out).not.toMatch(/a=candidate:|a=end-of-candidates/);
    const kept = offer.split('\r\n').filter((l) => !/^a=(candidate:|end-of-candidates)/.test(l));
    expect(out.split('\r\n')).toEqual(kept);
    expect(out).toMatch(/^a=setup:actpass\r$/m);
  });

  it('keeps LF-only offers and offers without candidates intact', () => {
    const lf = offer.replace(/\r\n/g, '\n');
    expect(offerWithoutCandidates(lf)).toBe(offerWithoutCandidates(offer).replace(/\r\n/g, '\n'));
    const none = offerWithoutCandidates(offer);
    expect(offerWithoutCandidates(none)).toBe(none);
  });
});
