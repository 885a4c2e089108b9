/**
 * DynamoDB's capacity arithmetic and its per-partition limits, for the local
 * DynamoDB (dynalite-worker.ts applies it to every request dynalite serves).
 *
 * - Item size: attribute names and values as DynamoDB counts them
 *   (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html).
 * - A write costs one write unit per KB of the larger of the old and the new item;
 *   each index whose entry the write puts, changes or deletes costs the same for
 *   its projected entry (two writes when the index key moves).
 * - A read costs one read unit per 4 KB (half for an eventually consistent read);
 *   a Query the sum of the items it read, rounded up once.
 * - Each partition key value of the table and of each index serves 1,000 write
 *   units and 3,000 read units a second. No burst credit: a partition's balance
 *   holds at most one second of its limit. A request is admitted while the
 *   balances of the partitions it touches are positive, and pays what it used;
 *   a large request can leave a debt that the next ones wait out.
 */

/** An attribute value as it travels on the wire (binary as base64), which is how dynalite stores it. */
export type AttributeValue =
  | { S: string }
  | { N: string }
  | { B: string }
  | { SS: string[] }
  | { NS: string[] }
  | { BS: string[] }
  | { M: Item }
  | { L: AttributeValue[] }
  | { NULL: boolean }
  | { BOOL: boolean };

export type Item = Record<string, AttributeValue>;

/** DynamoDB's per-partition throughput, per partition key value of a table or an index. */
export const PARTITION_LIMITS = { writeUnitsPerSecond: 1000, readUnitsPerSecond: 3000 } as const;

const utf8 = (text: string): number => Buffer.byteLength(text, 'utf8');

/** An item's size in bytes: every attribute's name and value. */
export function itemSize(item: Item): number {
  let size = 0;
  for (const name in item) size += utf8(name) + valueSize(item[name] as AttributeValue);
  return size;
}

function valueSize(value: AttributeValue): number {
  if ('S' in value) return utf8(value.S);
  if ('N' in value) return numberSize(value.N);
  if ('B' in value) return Buffer.byteLength(value.B, 'base64');
  if ('SS' in value) return value.SS.reduce((sum, member) => sum + utf8(member), 0);
  if ('NS' in value) return value.NS.reduce((sum, member) => sum + numberSize(member), 0);
  if ('BS' in value) return value.BS.reduce((sum, member) => sum + Buffer.byteLength(member, 'base64'), 0);
  // A document costs 3 bytes, and 1 more for each element.
  if ('M' in value) {
    let size = 3;
    for (const name in value.M) size += 1 + utf8(name) + valueSize(value.M[name] as AttributeValue);
    return size;
  }
  if ('L' in value) return value.L.reduce((sum, element) => sum + 1 + valueSize(element), 3);
  return 1; // NULL, BOOL
}

/**
 * A number is stored as base-100 digits: one byte per pair of significant digits,
 * aligned on the decimal point, one more byte, and one for a negative sign.
 */
export function numberSize(text: string): number {
  const { digits, exponent, negative } = significantDigits(text);
  if (digits === 0) return 1;
  const unaligned = digits % 2 === 0 && exponent % 2 === 0 ? 1 : 0;
  return 1 + Math.ceil(digits / 2) + unaligned + (negative ? 1 : 0);
}

/** The significant digits of a decimal, and the power of ten of the first one. */
function significantDigits(text: string): { digits: number; exponent: number; negative: boolean } {
  const trimmed = text.trim().toLowerCase();
  const negative = trimmed.startsWith('-');
  const [mantissa = '', power = '0'] = trimmed.replace(/^[-+]/, '').split('e');
  const [whole = '', fraction = ''] = mantissa.split('.');
  const all = whole + fraction;
  const leadingZeros = all.length - all.replace(/^0+/, '').length;
  const significant = all.slice(leadingZeros).replace(/0+$/, '');
  if (significant === '') return { digits: 0, exponent: 0, negative: false };
  return { digits: significant.length, exponent: whole.length - leadingZeros - 1 + Number(power), negative };
}

/** Write units for an item of this many bytes: one per KB, at least one. */
export function writeUnits(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / 1024));
}

/** Read units for this many bytes read: one per 4 KB, at least one; half for an eventually consistent read. */
export function readUnits(bytes: number, consistent: boolean): number {
  return Math.max(1, Math.ceil(bytes / 4096)) * (consistent ? 1 : 0.5);
}

/** The least a read costs. */
export function minimumReadUnits(consistent: boolean): number {
  return consistent ? 1 : 0.5;
}

/** A table or one of its indexes: each has partitions of its own. */
export interface Resource {
  table: string;
  index?: string;
  arn: string;
}

export interface IndexShape extends Resource {
  index: string;
  hashKey: string;
  rangeKey?: string;
  /** The attributes its entries hold beyond the keys; 'ALL' for the whole item. */
  projected: 'ALL' | readonly string[];
}

/** What the metering needs to know of a table: its keys and its global secondary indexes. */
export interface TableShape extends Resource {
  hashKey: string;
  rangeKey?: string;
  indexes: readonly IndexShape[];
}

interface KeySchemaElement {
  AttributeName: string;
  KeyType: string;
}

/** The part of a table's description (as dynalite stores it) that the metering reads. */
export interface TableDescription {
  TableName: string;
  TableArn: string;
  KeySchema: KeySchemaElement[];
  GlobalSecondaryIndexes?: Array<{
    IndexName: string;
    IndexArn: string;
    KeySchema: KeySchemaElement[];
    Projection: { ProjectionType?: string; NonKeyAttributes?: string[] };
  }>;
}

/** A table's shape from its description. Local secondary indexes are not metered (the stack's table has none). */
export function tableShape(description: TableDescription): TableShape {
  const tableKeys = keyNames(description.KeySchema);
  return {
    table: description.TableName,
    arn: description.TableArn,
    ...tableKeys,
    indexes: (description.GlobalSecondaryIndexes ?? []).map((index) => {
      const indexKeys = keyNames(index.KeySchema);
      const keyAttributes = [...new Set([indexKeys.hashKey, indexKeys.rangeKey, tableKeys.hashKey, tableKeys.rangeKey])].filter(
        (name): name is string => name !== undefined,
      );
      const { ProjectionType = 'ALL', NonKeyAttributes = [] } = index.Projection;
      return {
        table: description.TableName,
        index: index.IndexName,
        arn: index.IndexArn,
        ...indexKeys,
        projected: ProjectionType === 'ALL' ? 'ALL' : [...keyAttributes, ...(ProjectionType === 'INCLUDE' ? NonKeyAttributes : [])],
      };
    }),
  };
}

function keyNames(schema: KeySchemaElement[]): { hashKey: string; rangeKey?: string } {
  const hashKey = schema.find((key) => key.KeyType === 'HASH')?.AttributeName;
  if (!hashKey) throw new Error('a key schema without a HASH key');
  const rangeKey = schema.find((key) => key.KeyType === 'RANGE')?.AttributeName;
  return rangeKey ? { hashKey, rangeKey } : { hashKey };
}

/** A partition key value, as text: the value of a string or number key, a binary one's base64. */
export function partitionKeyOf(value: AttributeValue | undefined): string | undefined {
  if (!value) return undefined;
  if ('S' in value) return value.S;
  if ('N' in value) return value.N;
  if ('B' in value) return value.B;
  return undefined;
}

/** One partition of a table or an index, and units spent there. */
export interface Charge {
  resource: Resource;
  partitionKey: string;
  units: number;
}

/**
 * What a write costs, partition by partition: the table's (the larger of the old
 * and the new item), and every index entry the write puts, changes or deletes.
 * `oldItem` undefined: the item did not exist; `newItem` undefined: a delete.
 */
export function writeCharges(shape: TableShape, oldItem: Item | undefined, newItem: Item | undefined): Charge[] {
  const keyed = newItem ?? oldItem;
  const partitionKey = partitionKeyOf(keyed?.[shape.hashKey]);
  if (partitionKey === undefined) return [];
  const bytes = Math.max(oldItem ? itemSize(oldItem) : 0, newItem ? itemSize(newItem) : 0);
  const charges: Charge[] = [{ resource: shape, partitionKey, units: writeUnits(bytes) }];
  for (const index of shape.indexes) charges.push(...indexWrites(index, oldItem, newItem));
  return charges;
}

function indexWrites(index: IndexShape, oldItem: Item | undefined, newItem: Item | undefined): Charge[] {
  const before = oldItem && entryOf(index, oldItem);
  const after = newItem && entryOf(index, newItem);
  const writeOf = (entry: Item): Charge => ({ resource: index, partitionKey: partitionKeyOf(entry[index.hashKey]) as string, units: writeUnits(itemSize(entry)) });
  if (before && after) {
    const sameKey = sameValue(before[index.hashKey], after[index.hashKey]) && (!index.rangeKey || sameValue(before[index.rangeKey], after[index.rangeKey]));
    if (!sameKey) return [writeOf(before), writeOf(after)];
    if (sameItem(before, after)) return [];
    return [{ ...writeOf(after), units: writeUnits(Math.max(itemSize(before), itemSize(after))) }];
  }
  if (before) return [writeOf(before)];
  if (after) return [writeOf(after)];
  return [];
}

/** The index's entry for an item (its projected attributes), or undefined when the item lacks the index's keys. */
function entryOf(index: IndexShape, item: Item): Item | undefined {
  if (item[index.hashKey] === undefined || (index.rangeKey !== undefined && item[index.rangeKey] === undefined)) return undefined;
  if (index.projected === 'ALL') return item;
  const entry: Item = {};
  for (const name of index.projected) {
    const value = item[name];
    if (value !== undefined) entry[name] = value;
  }
  return entry;
}

function sameItem(a: Item, b: Item): boolean {
  const names = Object.keys(a);
  return names.length === Object.keys(b).length && names.every((name) => sameValue(a[name], b[name]));
}

function sameValue(a: AttributeValue | undefined, b: AttributeValue | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if ('M' in a) return 'M' in b && sameItem(a.M, b.M);
  if ('L' in a) return 'L' in b && a.L.length === b.L.length && a.L.every((element, i) => sameValue(element, b.L[i]));
  if ('SS' in a) return 'SS' in b && sameSet(a.SS, b.SS);
  if ('NS' in a) return 'NS' in b && sameSet(a.NS, b.NS);
  if ('BS' in a) return 'BS' in b && sameSet(a.BS, b.BS);
  const [type] = Object.keys(a) as (keyof AttributeValue)[];
  return type !== undefined && (b as Record<string, unknown>)[type] === (a as Record<string, unknown>)[type];
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((member) => b.includes(member));
}

export type Capacity = 'read' | 'write';

/** DynamoDB's throttling reason for a partition key value over its limit. */
export function throttlingReason(resource: Resource, capacity: Capacity): string {
  return `${resource.index === undefined ? 'Table' : 'Index'}${capacity === 'read' ? 'Read' : 'Write'}KeyRangeThroughputExceeded`;
}

/** Units and throttling events of a table or an index. */
export interface ResourceUsage {
  readUnits: number;
  writeUnits: number;
  /** Requests refused and batch items handed back unprocessed because a partition of this table or index was over its limit. */
  throttled: number;
}

export interface PartitionUsage extends ResourceUsage {
  table: string;
  index?: string;
  partitionKey: string;
  /** The most units asked of it within one second (whole seconds of the clock). */
  peakReadUnitsPerSecond: number;
  peakWriteUnitsPerSecond: number;
}

export interface MeterUsage {
  readUnits: number;
  writeUnits: number;
  /** Throttling events: requests refused and batch items handed back. */
  throttled: number;
  /** Requests answered ProvisionedThroughputExceededException. */
  throttledRequests: number;
  /** Batch items handed back as UnprocessedItems or UnprocessedKeys. */
  unprocessedItems: number;
  /** The table's own figures (its indexes' apart), and each index's. */
  byTable: Record<string, ResourceUsage & { byIndex: Record<string, ResourceUsage> }>;
  /** The busiest partitions since the table was created, most units first. */
  hotPartitions: PartitionUsage[];
}

interface Partition {
  usage: PartitionUsage;
  readBalance: number;
  writeBalance: number;
  refilledAt: number;
  second: number;
  readThisSecond: number;
  writeThisSecond: number;
}

const HOT_PARTITIONS = 10;

/**
 * Every partition's balance of read and write units, and what was spent where.
 * Partitions are created on first use, full.
 */
export class PartitionMeter {
  private partitions = new Map<string, Partition>();
  private resources = new Map<string, ResourceUsage & { table: string; index?: string }>();
  private throttledRequests = 0;
  private unprocessedItems = 0;
  private limited = true;

  /** `now` in milliseconds; tests hand in their own clock. */
  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Turns the limits on or off; when that changes, every partition starts full again. */
  setLimits(on: boolean): void {
    if (on === this.limited) return;
    this.limited = on;
    for (const partition of this.partitions.values()) {
      partition.readBalance = PARTITION_LIMITS.readUnitsPerSecond;
      partition.writeBalance = PARTITION_LIMITS.writeUnitsPerSecond;
    }
  }

  limitsOn(): boolean {
    return this.limited;
  }

  /**
   * Admits a request on these partitions, or answers the first one over its limit.
   * `reserve` units are taken from each at once (a read's least cost; the rest is
   * charged when its size is known), so that the keys of one batch share a balance.
   */
  admit(capacity: Capacity, targets: readonly { resource: Resource; partitionKey: string }[], reserve = 0): { resource: Resource; partitionKey: string } | undefined {
    if (!this.limited) return undefined;
    const partitions = targets.map((target) => this.partition(target.resource, target.partitionKey));
    const refused = partitions.findIndex((partition) => this.balance(partition, capacity) <= 0);
    if (refused >= 0) return targets[refused];
    for (const partition of partitions) this.spend(partition, capacity, reserve);
    return undefined;
  }

  /** Records units used; `reserved` of them were taken at admission already. */
  charge(capacity: Capacity, charges: readonly Charge[], reserved = 0): void {
    for (const { resource, partitionKey, units } of charges) {
      const partition = this.partition(resource, partitionKey);
      if (this.limited) this.spend(partition, capacity, units - reserved);
      this.record(resource, capacity, units);
      const usage = partition.usage;
      const second = Math.floor(this.now() / 1000);
      if (second !== partition.second) {
        partition.second = second;
        partition.readThisSecond = 0;
        partition.writeThisSecond = 0;
      }
      if (capacity === 'read') {
        usage.readUnits += units;
        partition.readThisSecond += units;
        usage.peakReadUnitsPerSecond = Math.max(usage.peakReadUnitsPerSecond, partition.readThisSecond);
      } else {
        usage.writeUnits += units;
        partition.writeThisSecond += units;
        usage.peakWriteUnitsPerSecond = Math.max(usage.peakWriteUnitsPerSecond, partition.writeThisSecond);
      }
    }
  }

  /** Records units used where no partition is named (a Scan reads across them all). */
  chargeUnpartitioned(resource: Resource, capacity: Capacity, units: number): void {
    this.record(resource, capacity, units);
  }

  /** Counts a throttling event: a refused request, or a batch item handed back. */
  throttled(resource: Resource, partitionKey: string, how: 'refused' | 'unprocessed'): void {
    this.resourceUsage(resource).throttled += 1;
    this.partition(resource, partitionKey).usage.throttled += 1;
    if (how === 'refused') this.throttledRequests += 1;
    else this.unprocessedItems += 1;
  }

  /** Forgets a table's partitions (it was deleted); its totals stay. */
  forgetTable(table: string): void {
    for (const [key, partition] of this.partitions) if (partition.usage.table === table) this.partitions.delete(key);
  }

  usage(): MeterUsage {
    const byTable: MeterUsage['byTable'] = {};
    let readUnits = 0;
    let writeUnits = 0;
    let throttled = 0;
    for (const { table, index, ...usage } of this.resources.values()) {
      const entry = (byTable[table] ??= { readUnits: 0, writeUnits: 0, throttled: 0, byIndex: {} });
      if (index === undefined) Object.assign(entry, usage);
      else entry.byIndex[index] = usage;
      readUnits += usage.readUnits;
      writeUnits += usage.writeUnits;
      throttled += usage.throttled;
    }
    const hotPartitions = [...this.partitions.values()]
      .map((partition) => ({ ...partition.usage }))
      .sort((a, b) => b.writeUnits + b.readUnits - (a.writeUnits + a.readUnits))
      .slice(0, HOT_PARTITIONS);
    return { readUnits, writeUnits, throttled, throttledRequests: this.throttledRequests, unprocessedItems: this.unprocessedItems, byTable, hotPartitions };
  }

  private record(resource: Resource, capacity: Capacity, units: number): void {
    const usage = this.resourceUsage(resource);
    if (capacity === 'read') usage.readUnits += units;
    else usage.writeUnits += units;
  }

  private resourceUsage(resource: Resource): ResourceUsage {
    const key = `${resource.table}\u0000${resource.index ?? ''}`;
    let usage = this.resources.get(key);
    if (!usage) {
      usage = { table: resource.table, ...(resource.index === undefined ? {} : { index: resource.index }), readUnits: 0, writeUnits: 0, throttled: 0 };
      this.resources.set(key, usage);
    }
    return usage;
  }

  private partition(resource: Resource, partitionKey: string): Partition {
    const key = `${resource.table}\u0000${resource.index ?? ''}\u0000${partitionKey}`;
    let partition = this.partitions.get(key);
    if (!partition) {
      partition = {
        usage: {
          table: resource.table,
          ...(resource.index === undefined ? {} : { index: resource.index }),
          partitionKey,
          readUnits: 0,
          writeUnits: 0,
          throttled: 0,
          peakReadUnitsPerSecond: 0,
          peakWriteUnitsPerSecond: 0,
        },
        readBalance: PARTITION_LIMITS.readUnitsPerSecond,
        writeBalance: PARTITION_LIMITS.writeUnitsPerSecond,
        refilledAt: this.now(),
        second: -1,
        readThisSecond: 0,
        writeThisSecond: 0,
      };
      this.partitions.set(key, partition);
    }
    return partition;
  }

  private balance(partition: Partition, capacity: Capacity): number {
    const now = this.now();
    const elapsedSeconds = (now - partition.refilledAt) / 1000;
    partition.refilledAt = now;
    partition.readBalance = Math.min(PARTITION_LIMITS.readUnitsPerSecond, partition.readBalance + elapsedSeconds * PARTITION_LIMITS.readUnitsPerSecond);
    partition.writeBalance = Math.min(PARTITION_LIMITS.writeUnitsPerSecond, partition.writeBalance + elapsedSeconds * PARTITION_LIMITS.writeUnitsPerSecond);
    return capacity === 'read' ? partition.readBalance : partition.writeBalance;
  }

  private spend(partition: Partition, capacity: Capacity, units: number): void {
    this.balance(partition, capacity);
    if (capacity === 'read') partition.readBalance -= units;
    else partition.writeBalance -= units;
  }
}
