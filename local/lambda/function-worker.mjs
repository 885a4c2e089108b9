// A worker thread that runs one function's invocations starts here. Worker threads do not
// inherit the TypeScript loader the stack runs under, so this plain module registers tsx in
// the worker before it loads the worker's code (function-worker.ts).
import { register } from 'tsx/esm/api';

register();
await import('./function-worker.ts');
