import { describe, expect, it } from 'vitest';
import { controlMessage, parseControl, serializeControl } from '../../src/api/stream/control-message.js';

describe('coordinator control messages', () => {
  it('serialises method, Name:Value lines and a trailing newline', () => {
    const text = serializeControl(
      controlMessage('publish-request', {
        'Request-ID': '0',
        'Stream-Channel': 'ch',
        'Stream-Key': 'k',
        'User-IP': '1.2.3.4',
      }),
    );
    expect(text).toBe('PUBLISH-REQUEST\nRequest-ID:0\nStream-Channel:ch\nStream-Key:k\nUser-IP:1.2.3.4\n');
    expect(serializeControl(controlMessage('HEARTBEAT'))).toBe('HEARTBEAT\n');
  });

  it('parses names case-insensitively, trims spaces, keeps the body', () => {
    const m = parseControl('publish-accept\r\nrequest-id: 7 \r\nSTREAM-ID:abc\n\nbody line\n')!;
    expect(m.method).toBe('PUBLISH-ACCEPT');
    expect(m.params.get('request-id')).toBe('7');
    expect(m.params.get('stream-id')).toBe('abc');
    expect(m.body).toBe('body line\n');
    expect(parseControl('')).toBeUndefined();
  });
});
