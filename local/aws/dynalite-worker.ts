// dynalite in a worker thread of its own: the table's work (validation, storage,
// metering, the dynamoUnavailable switch) runs beside the functions instead of
// between them, which is what lets a sweep of thousands of connections finish in
// seconds on a small machine.
//
// dynalite has no throughput limits; this module gives it DynamoDB's. Each
// request is metered where dynalite holds the old and the new item (see
// dynamo-metering.ts for the arithmetic), and refused or handed back as DynamoDB
// would once a partition is over its limit. dynalite 4's actions and db module
// are wrapped through Node's module cache before dynalite loads them: the
// wrappers admit a request on its key's partition, and the db functions dynalite
// calls once it has read the item (addConsumedCapacity, checkConditional,
// updateIndexes) charge what the request used and refuse a write whose index
// partitions are over their limit, before anything is stored.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import type { Server } from 'node:http';
import {
  type Capacity,
  type Item,
  type AttributeValue,
  itemSize,
  minimumReadUnits,
  PartitionMeter,
  partitionKeyOf,
  readUnits,
  type Resource,
  tableShape,
  type TableDescription,
  type TableShape,
  throttlingReason,
  writeCharges,
  writeUnits,
} from './dynamo-metering';
import { gateServer } from './dynamo-gate';

/** dynalite's error: the status and the JSON body it answers with. */
interface DynaliteError extends Error {
  statusCode?: number;
  body?: Record<string, unknown>;
  /** Set on the errors this module makes: which partition was over its limit. */
  throttle?: { resource: Resource; partitionKey: string };
}

type Callback = (error?: DynaliteError | null, result?: Record<string, unknown>) => void;

/** A validated request as dynalite's actions receive it. */
interface Request {
  TableName: string;
  Key?: Item;
  Item?: Item;
  IndexName?: string;
  ConsistentRead?: boolean;
  ReturnConsumedCapacity?: string;
  KeyConditions?: Record<string, { AttributeValueList?: AttributeValue[] }>;
  RequestItems?: Record<string, unknown>;
}

interface KeysAndAttributes {
  Keys: Item[];
  ConsistentRead?: boolean;
  AttributesToGet?: string[];
  ProjectionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
}

type WriteRequest = { PutRequest: { Item: Item } } | { DeleteRequest: { Key: Item } };

interface Store {
  getTable(name: string, callback: (error: DynaliteError | null, table?: TableDescription) => void): void;
}

type Action = (store: Store, data: Request, callback: Callback) => void;

interface DynaliteDb {
  addConsumedCapacity(data: Request, isRead: boolean, oldItem?: Item, newItem?: Item): unknown;
  checkConditional(data: Request, existingItem?: Item): DynaliteError | null | undefined;
  updateIndexes(store: Store, table: TableDescription, oldItem: Item | undefined | null, newItem: Item | undefined | null, callback: Callback): void;
  validateItem(item: Item, table: TableDescription): DynaliteError | null | undefined;
  validateKey(key: Item, table: TableDescription): DynaliteError | null | undefined;
  createKey(item: Item, table: TableDescription): string;
  validationError(message: string): DynaliteError;
}

const require = createRequire(import.meta.url);
const dynaliteRoot = dirname(require.resolve('dynalite/package.json'));
const db = require(join(dynaliteRoot, 'db')) as DynaliteDb;
const meter = new PartitionMeter();
/** Table shapes by name, read on a table's first request, forgotten when it is created, changed or deleted. */
const shapes = new Map<string, TableShape>();
/** Writes refused once their item was read, keyed by the item dynalite is about to store or delete. */
const refusals = new WeakMap<object, DynaliteError>();

const THROTTLED_MESSAGE =
  'Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index ' +
  'so please try again shortly. If exceptions persist, check if you have a hot key: ' +
  'https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html';

/** DynamoDB's answer to a request on a partition over its limit. */
function throttlingError(target: { resource: Resource; partitionKey: string }, capacity: Capacity): DynaliteError {
  const error: DynaliteError = new Error(THROTTLED_MESSAGE);
  error.statusCode = 400;
  error.body = {
    __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
    message: THROTTLED_MESSAGE,
    ThrottlingReasons: [{ reason: throttlingReason(target.resource, capacity), resource: target.resource.arn }],
  };
  error.throttle = target;
  return error;
}

function refuse(target: { resource: Resource; partitionKey: string }, capacity: Capacity, callback: Callback): void {
  meter.throttled(target.resource, target.partitionKey, 'refused');
  callback(throttlingError(target, capacity));
}

function withShape(store: Store, tableName: string, then: (shape: TableShape | undefined) => void): void {
  const known = shapes.get(tableName);
  if (known) return then(known);
  store.getTable(tableName, (error, table) => {
    if (error || !table) return then(undefined); // dynalite answers ResourceNotFoundException itself
    const shape = tableShape(table);
    shapes.set(tableName, shape);
    then(shape);
  });
}

function tablePartition(shape: TableShape, keyed: Item | undefined): { resource: Resource; partitionKey: string } | undefined {
  const partitionKey = partitionKeyOf(keyed?.[shape.hashKey]);
  return partitionKey === undefined ? undefined : { resource: shape, partitionKey };
}

// The db functions dynalite calls once it has read the item.

const originalAddConsumedCapacity = db.addConsumedCapacity.bind(db);
db.addConsumedCapacity = (data, isRead, oldItem, newItem) => {
  const shape = shapes.get(data.TableName);
  if (shape && isRead) chargeRead(shape, data, oldItem);
  if (shape && !isRead) admitAndChargeWrite(shape, data, oldItem, newItem);
  return originalAddConsumedCapacity(data, isRead, oldItem, newItem);
};

/** A GetItem (alone or in a batch) was admitted with its least cost taken; the rest is charged now that its size is known. */
function chargeRead(shape: TableShape, data: Request, item: Item | undefined): void {
  const target = tablePartition(shape, data.Key);
  if (!target) return;
  const consistent = data.ConsistentRead === true;
  meter.charge('read', [{ ...target, units: readUnits(item ? itemSize(item) : 0, consistent) }], minimumReadUnits(consistent));
}

/** A write whose condition held: every partition it touches must be within its limit, or nothing is stored. */
function admitAndChargeWrite(shape: TableShape, data: Request, oldItem: Item | undefined, newItem: Item | undefined): void {
  const charges = writeCharges(shape, oldItem, newItem);
  if (charges.length === 0) {
    // Deleting an item that is not there still costs a unit on its key's partition.
    const target = tablePartition(shape, data.Key);
    if (target) meter.charge('write', [{ ...target, units: 1 }]);
    return;
  }
  const refused = meter.admit('write', charges);
  if (refused) {
    refusals.set((newItem ?? oldItem) as object, throttlingError(refused, 'write'));
    return;
  }
  meter.charge('write', charges);
}

const originalCheckConditional = db.checkConditional.bind(db);
db.checkConditional = (data, existingItem) => {
  const failed = originalCheckConditional(data, existingItem);
  const shape = shapes.get(data.TableName);
  const target = shape && tablePartition(shape, data.Key ?? data.Item);
  // A write whose condition fails still costs the existing item's size on its partition.
  if (failed && target) meter.charge('write', [{ ...target, units: writeUnits(existingItem ? itemSize(existingItem) : 0) }]);
  return failed;
};

const originalUpdateIndexes = db.updateIndexes.bind(db);
db.updateIndexes = (store, table, oldItem, newItem, callback) => {
  const item = newItem ?? oldItem;
  const refusal = item ? refusals.get(item) : undefined;
  if (item && refusal) {
    refusals.delete(item);
    return callback(refusal);
  }
  originalUpdateIndexes(store, table, oldItem, newItem, callback);
};

// The actions: each is admitted on its key's partition before dynalite runs it.

/** Counts a refusal made once the item was read, as the answer to a request of its own. */
function countingRefusals(callback: Callback): Callback {
  return (error, result) => {
    if (error?.throttle) meter.throttled(error.throttle.resource, error.throttle.partitionKey, 'refused');
    callback(error, result);
  };
}

const singleWrite =
  (original: Action): Action =>
  (store, data, callback) =>
    withShape(store, data.TableName, (shape) => {
      const target = shape && tablePartition(shape, data.Item ?? data.Key);
      const refused = target && meter.admit('write', [target]);
      if (refused) return refuse(refused, 'write', callback);
      original(store, data, countingRefusals(callback));
    });

const getItem =
  (original: Action): Action =>
  (store, data, callback) =>
    withShape(store, data.TableName, (shape) => {
      const target = shape && tablePartition(shape, data.Key);
      const refused = target && meter.admit('read', [target], minimumReadUnits(data.ConsistentRead === true));
      if (refused) return refuse(refused, 'read', callback);
      original(store, data, callback);
    });

/** Query and Scan: dynalite is asked for the capacity it read, which is charged and then answered only if the caller asked. */
const pagedRead =
  (original: Action, partitioned: boolean): Action =>
  (store, data, callback) =>
    withShape(store, data.TableName, (shape) => {
      const resource = shape && (data.IndexName === undefined ? shape : shape.indexes.find((index) => index.index === data.IndexName));
      if (!resource) return original(store, data, callback);
      const consistent = data.ConsistentRead === true;
      const reserve = minimumReadUnits(consistent);
      const partitionKey = partitioned ? partitionKeyOf(data.KeyConditions?.[resource.hashKey]?.AttributeValueList?.[0]) : undefined;
      const refused = partitionKey !== undefined && meter.admit('read', [{ resource, partitionKey }], reserve);
      if (refused) return refuse(refused, 'read', callback);
      const asked = data.ReturnConsumedCapacity;
      data.ReturnConsumedCapacity = 'INDEXES';
      original(store, data, (error, result) => {
        if (error || !result) return callback(error, result);
        const consumed = result.ConsumedCapacity as { CapacityUnits?: number; TableName?: string } | undefined;
        const units = Math.max(reserve, consumed?.CapacityUnits ?? 0);
        if (partitionKey !== undefined) meter.charge('read', [{ resource, partitionKey, units }], reserve);
        else meter.chargeUnpartitioned(resource, 'read', units);
        if (asked === 'INDEXES') return callback(null, result);
        const { ConsumedCapacity: _, ...answer } = result;
        callback(null, asked === 'TOTAL' && consumed ? { ...answer, ConsumedCapacity: { CapacityUnits: consumed.CapacityUnits, TableName: consumed.TableName } } : answer);
      });
    });

/** Keys on partitions over their limit are handed back as UnprocessedKeys; the rest are read by dynalite's own BatchGetItem. */
const batchGetItem =
  (original: Action): Action =>
  (store, data, callback) => {
    const requested = (data.RequestItems ?? {}) as Record<string, KeysAndAttributes>;
    withShapes(store, Object.keys(requested), (known) => {
      const admitted: Record<string, KeysAndAttributes> = {};
      const handedBack: Record<string, KeysAndAttributes> = {};
      const throttled: { resource: Resource; partitionKey: string }[] = [];
      for (const [tableName, request] of Object.entries(requested)) {
        const shape = known.get(tableName);
        const keep: Item[] = [];
        const back: Item[] = [];
        for (const key of request.Keys) {
          const target = shape && tablePartition(shape, key);
          const refused = target && meter.admit('read', [target], minimumReadUnits(request.ConsistentRead === true));
          if (refused) {
            back.push(key);
            throttled.push(refused);
          } else keep.push(key);
        }
        if (keep.length > 0) admitted[tableName] = { ...request, Keys: keep };
        if (back.length > 0) handedBack[tableName] = { ...retryFields(request), Keys: back };
      }
      const [first] = throttled;
      if (first && Object.keys(admitted).length === 0) return refuse(first, 'read', callback);
      original(store, { ...data, RequestItems: admitted }, (error, result) => {
        if (error || !result) return callback(error, result);
        for (const target of throttled) meter.throttled(target.resource, target.partitionKey, 'unprocessed');
        const unprocessed = { ...(result.UnprocessedKeys as Record<string, KeysAndAttributes>) };
        for (const [tableName, back] of Object.entries(handedBack)) {
          unprocessed[tableName] = { ...back, Keys: [...back.Keys, ...(unprocessed[tableName]?.Keys ?? [])] };
        }
        callback(null, { ...result, UnprocessedKeys: unprocessed });
      });
    });
  };

/** What a caller needs to send unprocessed keys again as they were asked for. */
function retryFields(request: KeysAndAttributes): Omit<KeysAndAttributes, 'Keys'> {
  const { ConsistentRead, AttributesToGet, ProjectionExpression, ExpressionAttributeNames } = request;
  return Object.fromEntries(Object.entries({ ConsistentRead, AttributesToGet, ProjectionExpression, ExpressionAttributeNames }).filter(([, value]) => value !== undefined));
}

/**
 * dynalite's BatchWriteItem, with each put or delete admitted on its own: one
 * whose partitions are over their limit is handed back in UnprocessedItems. When
 * none can be written, the request is refused as a whole, as DynamoDB does.
 */
const batchWriteItem =
  (putItem: Action, deleteItem: Action): Action =>
  (store, data, callback) => {
    const requested = (data.RequestItems ?? {}) as Record<string, WriteRequest[]>;
    const tableNames = Object.keys(requested);
    tablesOf(store, tableNames, (error, tables) => {
      if (error || !tables) return callback(error);
      const invalid = validateBatch(requested, tables);
      if (invalid) return callback(invalid);
      const jobs: { tableName: string; request: WriteRequest; run: (done: Callback) => void }[] = [];
      const handedBack: { tableName: string; request: WriteRequest; target: { resource: Resource; partitionKey: string } }[] = [];
      for (const tableName of tableNames) {
        const shape = shapes.get(tableName);
        for (const request of requested[tableName] ?? []) {
          const options: Request = { TableName: tableName, ...(data.ReturnConsumedCapacity ? { ReturnConsumedCapacity: data.ReturnConsumedCapacity } : {}) };
          const keyed = 'PutRequest' in request ? request.PutRequest.Item : request.DeleteRequest.Key;
          const target = shape && tablePartition(shape, keyed);
          const refused = target && meter.admit('write', [target]);
          if (refused) {
            handedBack.push({ tableName, request, target: refused });
            continue;
          }
          const run =
            'PutRequest' in request
              ? (done: Callback) => putItem(store, { ...options, Item: request.PutRequest.Item }, done)
              : (done: Callback) => deleteItem(store, { ...options, Key: request.DeleteRequest.Key }, done);
          jobs.push({ tableName, request, run });
        }
      }
      const [first] = handedBack;
      if (first && jobs.length === 0) return refuse(first.target, 'write', callback);
      let pending = jobs.length;
      let failed: DynaliteError | undefined;
      const capacity = new Map<string, number>();
      const finish = () => {
        if (failed) return callback(failed);
        const [onlyThrottled] = handedBack;
        if (onlyThrottled && handedBack.length === tableNames.reduce((sum, name) => sum + (requested[name]?.length ?? 0), 0)) {
          return refuse(onlyThrottled.target, 'write', callback);
        }
        const unprocessed: Record<string, WriteRequest[]> = {};
        for (const { tableName, request, target } of handedBack) {
          meter.throttled(target.resource, target.partitionKey, 'unprocessed');
          (unprocessed[tableName] ??= []).push(request);
        }
        const answer: Record<string, unknown> = { UnprocessedItems: unprocessed };
        if (data.ReturnConsumedCapacity === 'TOTAL' || data.ReturnConsumedCapacity === 'INDEXES') {
          answer.ConsumedCapacity = [...capacity].map(([TableName, CapacityUnits]) => ({
            CapacityUnits,
            TableName,
            ...(data.ReturnConsumedCapacity === 'INDEXES' ? { Table: { CapacityUnits } } : {}),
          }));
        }
        callback(null, answer);
      };
      if (pending === 0) return finish();
      for (const job of jobs) {
        job.run((jobError, result) => {
          if (jobError?.throttle) handedBack.push({ tableName: job.tableName, request: job.request, target: jobError.throttle });
          else if (jobError) failed ??= jobError;
          const consumed = (result?.ConsumedCapacity as { CapacityUnits?: number } | undefined)?.CapacityUnits;
          if (consumed !== undefined) capacity.set(job.tableName, (capacity.get(job.tableName) ?? 0) + consumed);
          pending -= 1;
          if (pending === 0) finish();
        });
      }
    });
  };

/** The checks dynalite's BatchWriteItem makes before it writes anything. */
function validateBatch(requested: Record<string, WriteRequest[]>, tables: Map<string, TableDescription>): DynaliteError | undefined {
  for (const [tableName, requests] of Object.entries(requested)) {
    const table = tables.get(tableName) as TableDescription;
    const seen = new Set<string>();
    for (const request of requests) {
      const keyed = 'PutRequest' in request ? request.PutRequest.Item : request.DeleteRequest.Key;
      const invalid = 'PutRequest' in request ? db.validateItem(keyed, table) : db.validateKey(keyed, table);
      if (invalid) {
        if (invalid.body && typeof invalid.body.message === 'string' && /Missing the key|Type mismatch for key/.test(invalid.body.message)) {
          invalid.body.message = 'The provided key element does not match the schema';
        }
        return invalid;
      }
      const key = db.createKey(keyed, table);
      if (seen.has(key)) return db.validationError('Provided list of item keys contains duplicates');
      seen.add(key);
    }
  }
  return undefined;
}

function tablesOf(store: Store, names: string[], then: (error: DynaliteError | null, tables?: Map<string, TableDescription>) => void): void {
  const tables = new Map<string, TableDescription>();
  let pending = names.length;
  let failed = false;
  if (pending === 0) return then(null, tables);
  for (const name of names) {
    store.getTable(name, (error, table) => {
      if (failed) return;
      if (error || !table) {
        failed = true;
        return then(error);
      }
      tables.set(name, table);
      if (!shapes.has(name)) shapes.set(name, tableShape(table));
      pending -= 1;
      if (pending === 0) then(null, tables);
    });
  }
}

function withShapes(store: Store, names: string[], then: (known: Map<string, TableShape>) => void): void {
  const known = new Map<string, TableShape>();
  let pending = names.length;
  if (pending === 0) return then(known);
  for (const name of names) {
    withShape(store, name, (shape) => {
      if (shape) known.set(name, shape);
      pending -= 1;
      if (pending === 0) then(known);
    });
  }
}

/** Table changes: the table's shape is read again on its next request, and a deleted table's partitions are gone. */
const tableChange =
  (original: Action, deletes: boolean): Action =>
  (store, data, callback) =>
    original(store, data, (error, result) => {
      shapes.delete(data.TableName);
      if (deletes && !error) meter.forgetTable(data.TableName);
      callback(error, result);
    });

/**
 * Loads dynalite's actions, then puts the metered ones in their place in the
 * module cache, so that dynalite's index requires those. The batch actions run
 * dynalite's own single-item actions, which the batch admits itself.
 */
function loadMeteredDynalite(): (options: { createTableMs: number; deleteTableMs: number; updateTableMs: number }) => Server {
  const actionPath = (name: string) => require.resolve(join(dynaliteRoot, 'actions', name));
  const original = (name: string) => require(actionPath(name)) as Action;
  const replace = (name: string, action: Action) => {
    original(name);
    const cached = require.cache[actionPath(name)];
    if (!cached) throw new Error(`dynalite's ${name} action is not loaded`);
    cached.exports = action;
  };
  const [put, update, del, get, query, scan, batchGet, createTable, deleteTable, updateTable] = [
    'putItem',
    'updateItem',
    'deleteItem',
    'getItem',
    'query',
    'scan',
    'batchGetItem',
    'createTable',
    'deleteTable',
    'updateTable',
  ].map(original) as Action[];
  replace('putItem', singleWrite(put as Action));
  replace('updateItem', singleWrite(update as Action));
  replace('deleteItem', singleWrite(del as Action));
  replace('getItem', getItem(get as Action));
  replace('query', pagedRead(query as Action, true));
  replace('scan', pagedRead(scan as Action, false));
  replace('batchGetItem', batchGetItem(batchGet as Action));
  replace('batchWriteItem', batchWriteItem(put as Action, del as Action));
  replace('createTable', tableChange(createTable as Action, false));
  replace('deleteTable', tableChange(deleteTable as Action, true));
  replace('updateTable', tableChange(updateTable as Action, false));
  return require('dynalite');
}

/** What the stack asks the worker; each question carries an id that its answer repeats. */
export type WorkerQuestion = { type: 'usage' } | { type: 'limits'; on: boolean } | { type: 'close' };

const dynalite = loadMeteredDynalite();
const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
// Requests received, by operation (X-Amz-Target without its prefix), for GET /local/dynamodb-calls.
const requests: Record<string, number> = {};
server.on('request', (request: { headers: Record<string, string | string[] | undefined> }) => {
  const operation = String(request.headers['x-amz-target'] ?? 'unknown').split('.').pop() ?? 'unknown';
  requests[operation] = (requests[operation] ?? 0) + 1;
});
// The dynamoUnavailable switch, set by the stack's thread (see LocalDynamo.setUnavailable).
const unavailable = new Int32Array((workerData as { unavailable: SharedArrayBuffer }).unavailable);
gateServer(server, () => Atomics.load(unavailable, 0) === 1);
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  parentPort?.postMessage({ port: typeof address === 'object' && address ? address.port : 0 });
});
parentPort?.on('message', (question: WorkerQuestion & { id: number }) => {
  if (question.type === 'usage') parentPort?.postMessage({ id: question.id, requests: { ...requests }, usage: meter.usage() });
  if (question.type === 'limits') {
    meter.setLimits(question.on);
    parentPort?.postMessage({ id: question.id, on: meter.limitsOn() });
  }
  if (question.type === 'close') {
    server.closeAllConnections();
    server.close(() => parentPort?.close());
  }
});

