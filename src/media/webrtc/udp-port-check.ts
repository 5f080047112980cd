import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';

/**
 * Checks that the WebRTC mux port can be bound. libdatachannel binds it on the first
 * peer connection, from a native thread, and a failure there aborts the process; so a
 * port already in use (another Chorus, another SFU) is found at start-up instead, with
 * a message that says which setting to change.
 */
export async function assertUdpPortFree(port: number, address: string | undefined): Promise<void> {
  if (port === 0) return;
  const host = address ?? '0.0.0.0';
  const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', reuseAddr: false });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ port, address: host, exclusive: true }, () => resolve());
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(
      `WebRTC UDP port ${host}:${port} cannot be used (${code ?? String(err)}): set WEBRTC_UDP_PORT to a free port (or WEBRTC_PORT_RANGE)`,
      { cause: err },
    );
  } finally {
    await new Promise<void>((resolve) => {
      try {
        socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}
