import WebSocket from 'ws';

/** Opens a Signal socket (`/v1/connect`) with a session cookie; resolves once open. */
export function openSignalSocket(url: string, cookie: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/connect`, {
      headers: { cookie },
      perMessageDeflate: false,
    });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}
