import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** How often idle open connections are checked against the switch. */
const CHECK_INTERVAL_MS = 25;

/** A TCP gate in front of dynalite; see startDynamoGate. */
export interface DynamoGate {
  /** The URL the functions get as AWS_ENDPOINT_URL_DYNAMODB. */
  endpoint: string;
  close(): Promise<void>;
}

/**
 * Passes bytes between the functions and dynalite, unchanged, while
 * `unavailable()` is false. While it is true, connections are cut: new ones as
 * they arrive, open ones on their next request or within a few milliseconds. The SDK sees the
 * resets an unreachable DynamoDB causes, retries, and gives up with an error.
 */
export async function startDynamoGate(dynaliteEndpoint: string, unavailable: () => boolean): Promise<DynamoGate> {
  const target = new URL(dynaliteEndpoint);
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (unavailable()) {
      client.destroy();
      return;
    }
    const upstream = connect(Number(target.port), target.hostname);
    for (const socket of [client, upstream]) {
      open.add(socket);
      socket.on('close', () => open.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    // Registered before the pipe, so that it sees each request first: nothing
    // passes once the switch is on, not even on a connection opened before.
    client.on('data', () => {
      if (!unavailable()) return;
      client.destroy();
      upstream.destroy();
    });
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const sweeper = setInterval(() => {
    if (!unavailable()) return;
    for (const socket of open) socket.destroy();
  }, CHECK_INTERVAL_MS);
  sweeper.unref();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        clearInterval(sweeper);
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
