import { Worker } from 'node:worker_threads';

/** A worker thread running the TypeScript module at `entry`, which reads `data` as its workerData (with `entry`). */
export function tsWorker(entry: URL, data: Record<string, unknown> = {}): Worker {
  return new Worker(new URL('./worker-entry.mjs', import.meta.url), { workerData: { ...data, entry: entry.href } });
}
