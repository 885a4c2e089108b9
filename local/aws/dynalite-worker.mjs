// The local DynamoDB's worker thread starts here. Worker threads do not inherit
// the TypeScript loader the stack runs under, so this plain module registers tsx
// in the worker before it loads the worker's code (dynalite-worker.ts).
import { register } from 'tsx/esm/api';

register();
await import('./dynalite-worker.ts');
