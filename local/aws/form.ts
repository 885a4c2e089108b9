/**
 * The parameters of a Query-protocol request (`application/x-www-form-urlencoded`),
 * with the indexed-list conventions of EC2 and SNS: `Filter.1.Value.2`, `VpcEndpointId.1`,
 * `MessageAttributes.entry.1.Name`.
 */
export class QueryParams {
  private constructor(private readonly values: ReadonlyMap<string, string>) {}

  /** Parses a form-encoded request body. */
  static parse(body: string): QueryParams {
    return new QueryParams(new Map(new URLSearchParams(body)));
  }

  /** The single value of a parameter, if given. */
  get(name: string): string | undefined {
    return this.values.get(name);
  }

  /** The names of all parameters, in no particular order. */
  names(): string[] {
    return [...this.values.keys()];
  }

  /** Values of `prefix.1`, `prefix.2`, … in index order. */
  list(prefix: string): string[] {
    const found: Array<[number, string]> = [];
    for (const [name, value] of this.values) {
      const index = indexAfter(prefix, name);
      if (index !== undefined && name === `${prefix}.${index}`) found.push([index, value]);
    }
    return found.sort(([a], [b]) => a - b).map(([, value]) => value);
  }

  /** The structures `prefix.N.*` in index order, each seen with `prefix.N.` removed from its names. */
  structures(prefix: string): QueryParams[] {
    const byIndex = new Map<number, Map<string, string>>();
    for (const [name, value] of this.values) {
      const index = indexAfter(prefix, name);
      const head = `${prefix}.${index}.`;
      if (index === undefined || !name.startsWith(head)) continue;
      const members = byIndex.get(index) ?? new Map<string, string>();
      members.set(name.slice(head.length), value);
      byIndex.set(index, members);
    }
    return [...byIndex.entries()].sort(([a], [b]) => a - b).map(([, members]) => new QueryParams(members));
  }
}

function indexAfter(prefix: string, name: string): number | undefined {
  if (!name.startsWith(`${prefix}.`)) return undefined;
  const digits = /^(\d+)(?:\.|$)/.exec(name.slice(prefix.length + 1))?.[1];
  return digits === undefined ? undefined : Number(digits);
}
