import { describe, expect, it } from 'vitest';
import {
  type Item,
  itemSize,
  numberSize,
  PartitionMeter,
  readUnits,
  tableShape,
  writeCharges,
  writeUnits,
} from '../../../local/aws/dynamo-metering';
import { meteredTable } from './metered-table';

/** A clock the test moves by hand. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let time = 0;
  return { now: () => time, advance: (ms) => (time += ms) };
}

/** The metering tests' table, as dynalite describes it once created. */
function stackTable() {
  const definition = meteredTable('state');
  return tableShape({
    TableName: 'state',
    TableArn: 'arn:aws:dynamodb:us-east-1:000000000000:table/state',
    KeySchema: definition.KeySchema as { AttributeName: string; KeyType: string }[],
    GlobalSecondaryIndexes: (definition.GlobalSecondaryIndexes ?? []).map((index) => ({
      IndexName: index.IndexName as string,
      IndexArn: `arn:aws:dynamodb:us-east-1:000000000000:table/state/index/${index.IndexName}`,
      KeySchema: index.KeySchema as { AttributeName: string; KeyType: string }[],
      Projection: { ProjectionType: index.Projection?.ProjectionType },
    })),
  });
}

const s = (text: string) => ({ S: text });

function connectionItem(state: string, padding = 0): Item {
  return {
    pk: s('CONN#vpce-svc-1'),
    sk: s('EP#vpce-1'),
    gsi1pk: s(`STATE#${state}`),
    gsi1sk: s('2024-01-01T00:00:00Z#vpce-svc-1#vpce-1'),
    state: s(state),
    note: s('x'.repeat(padding)),
  };
}

describe('item sizes as DynamoDB counts them', () => {
  it('counts names and string values in UTF-8 bytes', () => {
    expect(itemSize({ a: s('abc') })).toBe(4);
    expect(itemSize({ ä: s('€') })).toBe(2 + 3);
  });

  it('counts a number by its significant digits, in pairs, plus one byte', () => {
    expect([numberSize('0'), numberSize('7'), numberSize('12'), numberSize('123'), numberSize('-123')]).toEqual([1, 2, 2, 3, 4]);
    expect(numberSize('1000000')).toBe(numberSize('1'));
    expect(numberSize('1.5')).toBe(3); // 01.50: two base-100 digits
    expect(numberSize('0.05')).toBe(numberSize('5e-2'));
  });

  it('counts 3 bytes for a map or a list, and one more per element', () => {
    expect(itemSize({ m: { M: { k: s('v') } } })).toBe(1 + 3 + 1 + 1 + 1);
    expect(itemSize({ l: { L: [s('ab'), { NULL: true }] } })).toBe(1 + 3 + (1 + 2) + (1 + 1));
    expect(itemSize({ b: { B: Buffer.from('four').toString('base64') }, t: { BOOL: true } })).toBe(1 + 4 + 1 + 1);
  });

  it('charges a write unit per KB, a read unit per 4 KB, half for an eventually consistent read', () => {
    expect([writeUnits(0), writeUnits(1024), writeUnits(1025)]).toEqual([1, 1, 2]);
    expect([readUnits(4096, true), readUnits(4097, true), readUnits(4097, false), readUnits(0, false)]).toEqual([1, 2, 1, 0.5]);
  });
});

describe('what a write costs on the table and on each index', () => {
  const table = stackTable();

  it('charges the larger of the old and the new item on the table, and each index the new entry', () => {
    const charges = writeCharges(table, undefined, connectionItem('pendingAcceptance', 1500));

    expect(charges).toEqual([
      { resource: table, partitionKey: 'CONN#vpce-svc-1', units: 2 },
      { resource: table.indexes[0], partitionKey: 'STATE#pendingAcceptance', units: 2 },
      { resource: table.indexes[1], partitionKey: 'CONN#vpce-svc-1', units: 1 },
    ]);
  });

  it('charges two writes on an index whose key the write moves (a delete and a put)', () => {
    const charges = writeCharges(table, connectionItem('pendingAcceptance', 2800), connectionItem('available', 100));

    expect(charges.map(({ resource, partitionKey, units }) => [resource.index ?? 'table', partitionKey, units])).toEqual([
      ['table', 'CONN#vpce-svc-1', 3],
      ['byState', 'STATE#pendingAcceptance', 3],
      ['byState', 'STATE#available', 1],
      ['byServiceState', 'CONN#vpce-svc-1', 1],
      ['byServiceState', 'CONN#vpce-svc-1', 1],
    ]);
  });

  it('charges nothing on a keys-only index when no key changes, and the whole entry on an index that projects everything', () => {
    const charges = writeCharges(table, connectionItem('available', 10), connectionItem('available', 1800));

    expect(charges.map(({ resource, units }) => [resource.index ?? 'table', units])).toEqual([
      ['table', 2],
      ['byState', 2],
    ]);
  });

  it('charges an index nothing for an item without its keys, and a delete the old entry', () => {
    const policy: Item = { pk: s('POLICY#default'), sk: s('V#0000000001'), body: s('{}') };
    const deleted = writeCharges(table, connectionItem('available'), undefined);

    expect(writeCharges(table, undefined, policy).map((charge) => charge.resource.index ?? 'table')).toEqual(['table']);
    expect(deleted.map(({ resource, partitionKey }) => [resource.index ?? 'table', partitionKey])).toEqual([
      ['table', 'CONN#vpce-svc-1'],
      ['byState', 'STATE#available'],
      ['byServiceState', 'CONN#vpce-svc-1'],
    ]);
  });
});

describe('per-partition limits', () => {
  const table = stackTable();
  const [byState] = table.indexes;
  const hot = { resource: table, partitionKey: 'CONN#vpce-svc-1' };
  const write = (partitionKey: string, units: number) => [{ resource: table, partitionKey, units }];

  it('admits writes on a partition until a second of its limit is spent, then again as it refills at 1,000 units a second', () => {
    const clock = manualClock();
    const meter = new PartitionMeter(clock.now);
    let admitted = 0;
    while (!meter.admit('write', [hot]) && admitted < 10_000) {
      meter.charge('write', write(hot.partitionKey, 10));
      admitted += 10;
    }
    clock.advance(500);
    let afterHalfASecond = 0;
    while (!meter.admit('write', [hot]) && afterHalfASecond < 10_000) {
      meter.charge('write', write(hot.partitionKey, 10));
      afterHalfASecond += 10;
    }

    expect(admitted).toBe(1000);
    expect(afterHalfASecond).toBe(500);
  });

  it('keeps each partition key value, and each index, to its own limit', () => {
    const meter = new PartitionMeter(manualClock().now);
    meter.charge('write', write(hot.partitionKey, 1000));

    expect(meter.admit('write', [hot])).toEqual(hot);
    expect(meter.admit('write', [{ resource: table, partitionKey: 'CONN#vpce-svc-2' }])).toBeUndefined();
    expect(meter.admit('write', [{ resource: byState!, partitionKey: hot.partitionKey }])).toBeUndefined();
  });

  it('lets a large write leave a debt that the next writes wait out', () => {
    const clock = manualClock();
    const meter = new PartitionMeter(clock.now);
    meter.charge('write', write(hot.partitionKey, 999));
    const admittedAtOneUnitLeft = meter.admit('write', [hot]);
    meter.charge('write', write(hot.partitionKey, 400));
    clock.advance(399);
    const refusedInDebt = meter.admit('write', [hot]);
    clock.advance(2);

    expect(admittedAtOneUnitLeft).toBeUndefined();
    expect(refusedInDebt).toEqual(hot);
    expect(meter.admit('write', [hot])).toBeUndefined();
  });

  it('serves 3,000 read units a second, and reserves each admitted read its least cost, so that one batch shares the balance', () => {
    const meter = new PartitionMeter(manualClock().now);
    const admittedKeys = Array.from({ length: 3500 }, () => meter.admit('read', [hot], 1)).filter((refused) => !refused).length;

    expect(admittedKeys).toBe(3000);
  });

  it('has no limits when they are off, and starts full when they are turned on again', () => {
    const meter = new PartitionMeter(manualClock().now);
    meter.setLimits(false);
    meter.charge('write', write(hot.partitionKey, 5000));
    const whileOff = meter.admit('write', [hot]);
    meter.setLimits(true);

    expect(whileOff).toBeUndefined();
    expect(meter.admit('write', [hot])).toBeUndefined();
  });

  it('reports units and throttling by table and by index, and the busiest partitions first', () => {
    const clock = manualClock();
    const meter = new PartitionMeter(clock.now);
    meter.charge('write', writeCharges(table, undefined, connectionItem('pendingAcceptance')));
    meter.charge('write', write('CONN#vpce-svc-2', 7));
    meter.charge('read', [{ ...hot, units: 0.5 }]);
    meter.throttled(byState!, 'STATE#pendingAcceptance', 'refused');
    meter.throttled(table, 'CONN#vpce-svc-2', 'unprocessed');

    const usage = meter.usage();

    expect(usage).toMatchObject({
      readUnits: 0.5,
      writeUnits: 10,
      throttled: 2,
      throttledRequests: 1,
      unprocessedItems: 1,
      byTable: {
        state: {
          readUnits: 0.5,
          writeUnits: 8,
          throttled: 1,
          byIndex: { byState: { readUnits: 0, writeUnits: 1, throttled: 1 }, byServiceState: { readUnits: 0, writeUnits: 1, throttled: 0 } },
        },
      },
    });
    expect(usage.hotPartitions[0]).toEqual({
      table: 'state',
      partitionKey: 'CONN#vpce-svc-2',
      readUnits: 0,
      writeUnits: 7,
      throttled: 1,
      peakReadUnitsPerSecond: 0,
      peakWriteUnitsPerSecond: 7,
    });
  });
});
