import { safeLine } from './terminal';

/** Rows as a plain-text table: a header of the keys of the first row, columns padded to fit; each cell one line, controls escaped. */
export function table(rows: Record<string, unknown>[]): string {
  const first = rows[0];
  if (!first) return '(none)';
  const columns = Object.keys(first);
  const cells = rows.map((row) => columns.map((column) => text(row[column])));
  const widths = columns.map((column, i) => Math.max(column.length, ...cells.map((row) => row[i]?.length ?? 0)));
  const line = (values: string[]) => values.map((value, i) => value.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(columns), ...cells.map(line)].join('\n');
}

function text(value: unknown): string {
  if (value === undefined || value === null) return '';
  return safeLine(typeof value === 'object' ? JSON.stringify(value) : String(value));
}
