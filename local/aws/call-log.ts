export interface CallCount {
  received: number;
  failed: number;
}

export interface CallsSnapshot {
  byAction: Record<string, CallCount>;
  byEndpoint: Record<string, Record<string, CallCount>>;
  /** The calls made in each account and Region (`account/region`), by action. */
  byAccountRegion: Record<string, { byAction: Record<string, CallCount> }>;
}

/**
 * Every EC2 API call received, and how many of them an injected fault failed.
 * A call counts once for each endpoint id it names, and once in the account and
 * Region it was made in.
 */
export class CallLog {
  private byAction = new Map<string, CallCount>();
  private byEndpoint = new Map<string, Map<string, CallCount>>();
  private byAccountRegion = new Map<string, Map<string, CallCount>>();

  /**
   * Counts a call as received (in `accountRegion`, `account/region`, when known); returns a
   * function that marks that same call failed.
   */
  received(action: string, endpointIds: readonly string[], accountRegion?: string): () => void {
    const counts = [countOf(this.byAction, action)];
    if (accountRegion !== undefined) counts.push(countOf(nested(this.byAccountRegion, accountRegion), action));
    for (const endpointId of new Set(endpointIds)) counts.push(countOf(nested(this.byEndpoint, endpointId), action));
    for (const count of counts) count.received += 1;
    return () => {
      for (const count of counts) count.failed += 1;
    };
  }

  snapshot(): CallsSnapshot {
    return {
      byAction: toRecord(this.byAction, (count) => ({ ...count })),
      byEndpoint: toRecord(this.byEndpoint, (actions) => toRecord(actions, (count) => ({ ...count }))),
      byAccountRegion: toRecord(this.byAccountRegion, (actions) => ({ byAction: toRecord(actions, (count) => ({ ...count })) })),
    };
  }

  reset(): void {
    this.byAction = new Map();
    this.byEndpoint = new Map();
    this.byAccountRegion = new Map();
  }
}

function nested(maps: Map<string, Map<string, CallCount>>, key: string): Map<string, CallCount> {
  const existing = maps.get(key);
  if (existing) return existing;
  const created = new Map<string, CallCount>();
  maps.set(key, created);
  return created;
}

function countOf(counts: Map<string, CallCount>, action: string): CallCount {
  const existing = counts.get(action);
  if (existing) return existing;
  const created = { received: 0, failed: 0 };
  counts.set(action, created);
  return created;
}

function toRecord<V, R>(map: ReadonlyMap<string, V>, convert: (value: V) => R): Record<string, R> {
  return Object.fromEntries([...map.entries()].map(([key, value]) => [key, convert(value)]));
}
