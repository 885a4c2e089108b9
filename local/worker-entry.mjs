// Where the local stack's worker threads start (dynalite's, and the functions' with
// LOCAL_FUNCTION_WORKERS). Worker threads do not inherit the TypeScript loader the stack
// runs under, so this plain module registers tsx in the worker, then loads the TypeScript
// module its creator named (tsWorker in local/ts-worker.ts).
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
