// bench/signal's idle crowd: a child process (forked by run.ts) that opens the idle
// connections and holds them, answering the server's pings. Apart from the process that
// measures, so that its heap (10,000 sockets) and its GC pauses are not the measuring
// process's: a mark-compact of that heap is tens of ms, which the hops measured in the
// same process would count as the server's.
//
// Messages from the parent: { url, cookies } opens one Signal socket per cookie, or
// { url, peerIds, heartbeatMs } one PeerJS client socket per id (`--server peerjs`), and
// answers { opened }; { close: true } terminates them all and answers { closed }.
import WebSocket from 'ws';
import { openSignalSocket as open } from './open-signal-socket.js';
import { openPeerJsSocket } from './open-peerjs-socket.js';

interface Open {
  url: string;
  cookies?: string[];
  peerIds?: string[];
  heartbeatMs?: number;
}

const sockets: WebSocket[] = [];

process.on('message', (m: Open | { close: true }) => {
  void (async () => {
    if ('close' in m) {
      for (const s of sockets) s.terminate();
      process.send?.({ closed: sockets.length });
      return;
    }
    const opens: Array<() => Promise<WebSocket>> = m.peerIds
      ? m.peerIds.map((id) => () => openPeerJsSocket(m.url, id, m.heartbeatMs ?? 0))
      : (m.cookies ?? []).map((c) => () => open(m.url, c));
    for (let i = 0; i < opens.length; i += 200) {
      sockets.push(...(await Promise.all(opens.slice(i, i + 200).map((o) => o()))));
    }
    process.send?.({ opened: sockets.length });
  })().catch((err: unknown) => {
    process.send?.({ error: String(err) });
  });
});
