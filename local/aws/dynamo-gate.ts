import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** How often idle open connections are checked against the switch. */
const CHECK_INTERVAL_MS = 25;

/**
 * The switch of the dynamoUnavailable fault, on dynalite's own HTTP server: while
 * `unavailable()` is true, connections are cut, new ones as they arrive, open ones
 * on their next request (before dynalite sees it) or within a few milliseconds. The
 * SDK sees the resets an unreachable DynamoDB causes, retries, and gives up with an
 * error. Applied where dynalite runs, so that the functions reach it directly, not
 * through a proxy that copies every request and answer on their thread.
 */
export function gateServer(server: Server, unavailable: () => boolean): void {
  const open = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    if (unavailable()) {
      socket.destroy();
      return;
    }
    open.add(socket);
    socket.on('close', () => open.delete(socket));
  });
  // Every request listener (dynalite's, the request count) runs only while the switch is off.
  const listeners = server.listeners('request') as ((request: IncomingMessage, response: ServerResponse) => void)[];
  server.removeAllListeners('request');
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (unavailable()) {
      request.socket.destroy();
      return;
    }
    for (const listener of listeners) listener.call(server, request, response);
  });
  const sweeper = setInterval(() => {
    if (!unavailable()) return;
    for (const socket of open) socket.destroy();
  }, CHECK_INTERVAL_MS);
  sweeper.unref();
  server.on('close', () => clearInterval(sweeper));
}
