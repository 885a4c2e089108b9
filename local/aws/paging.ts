import { Ec2ApiError } from './ec2-errors';

const MIN_RESULTS = 5;
const MAX_RESULTS = 1000;

export interface Page<T> {
  items: T[];
  nextToken?: string;
}

/**
 * Cuts one page out of `items` the way EC2's describe calls do: MaxResults 5..1000
 * (default 1000) and an opaque NextToken that the caller hands back unchanged.
 */
export function pageOf<T>(items: readonly T[], maxResults: string | undefined, nextToken: string | undefined): Page<T> {
  const size = parseMaxResults(maxResults);
  const offset = nextToken === undefined || nextToken === '' ? 0 : decodeToken(nextToken);
  const end = offset + size;
  return {
    items: items.slice(offset, end),
    nextToken: end < items.length ? encodeToken(end) : undefined,
  };
}

function parseMaxResults(raw: string | undefined): number {
  if (raw === undefined) return MAX_RESULTS;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < MIN_RESULTS || value > MAX_RESULTS) {
    throw new Ec2ApiError(
      'InvalidParameterValue',
      `Value ( ${raw} ) for parameter maxResults is invalid. Expecting a value between ${MIN_RESULTS} and ${MAX_RESULTS}.`,
    );
  }
  return value;
}

function encodeToken(offset: number): string {
  return Buffer.from(JSON.stringify({ v: 1, offset })).toString('base64url');
}

function decodeToken(token: string): number {
  try {
    const decoded: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (typeof decoded === 'object' && decoded !== null && 'offset' in decoded) {
      const { offset } = decoded;
      if (typeof offset === 'number' && Number.isInteger(offset) && offset >= 0) return offset;
    }
  } catch {
    // falls through to the error below: a token we did not issue
  }
  throw new Ec2ApiError('InvalidPaginationToken', `Invalid pagination token: ${token}`);
}
