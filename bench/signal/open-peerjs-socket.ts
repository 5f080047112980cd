import WebSocket from 'ws';

/**
 * Opens a PeerJS client's socket (`/peerjs?key=peerjs&id=<id>&token=<token>`) as the
 * PeerJS client does; resolves at the server's `{"type":"OPEN"}` (its ERROR or ID-TAKEN
 * rejects). Like that client, it then sends `{"type":"HEARTBEAT"}` every `heartbeatMs`
 * (the client's default is 5 s; the server drops a client silent for its alive_timeout)
 * until the socket closes; 0 sends none.
 */
export function openPeerJsSocket(url: string, id: string, heartbeatMs: number): Promise<WebSocket> {
  const token = Math.random().toString(36).slice(2);
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/peerjs?key=peerjs&id=${id}&token=${token}`, {
      perMessageDeflate: false,
    });
    ws.once('message', (data: WebSocket.RawData) => {
      const type = (JSON.parse((data as Buffer).toString()) as { type?: string }).type;
      if (type !== 'OPEN') {
        reject(new Error(`peerjs ${id}: ${type} instead of OPEN`));
        return;
      }
      if (heartbeatMs > 0) {
        const timer = setInterval(() => ws.send('{"type":"HEARTBEAT"}'), heartbeatMs);
        ws.once('close', () => clearInterval(timer));
      }
      resolve(ws);
    });
    ws.once('error', reject);
  });
}
