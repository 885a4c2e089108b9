// dynalite in a worker thread of its own: the table's work (validation, storage)
// runs beside the functions instead of between them, which is what lets a sweep of
// thousands of connections finish in seconds on a small machine. Plain JavaScript:
// worker threads do not inherit the TypeScript loader the stack runs under.
import { parentPort } from 'node:worker_threads';
import dynalite from 'dynalite';

const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
// Requests received, by operation (X-Amz-Target without its prefix), for GET /local/dynamodb-calls.
const requests = {};
server.on('request', (request) => {
  const operation = String(request.headers['x-amz-target'] ?? 'unknown').split('.').pop();
  requests[operation] = (requests[operation] ?? 0) + 1;
});
server.listen(0, '127.0.0.1', () => {
  parentPort?.postMessage({ port: server.address().port });
});
parentPort?.on('message', (message) => {
  if (message === 'requests') parentPort?.postMessage({ requests: { ...requests } });
  if (message === 'close') {
    server.closeAllConnections();
    server.close(() => parentPort?.close());
  }
});
