/**
 * The local stack's own log, and how the functions' log reaches the terminal.
 *
 * LOG_FORMAT=json: the local stack writes one JSON line per event on stderr, and the functions'
 * Powertools log lines and CloudWatch metric documents go to stdout untouched, as CloudWatch
 * would receive them. LOG_FORMAT=text (the default for `npm start`): one short line per log entry,
 * the Lambda context fields left out, and no metric documents.
 */
export type LogFormat = 'text' | 'json';

let format: LogFormat = 'json';

/** Chooses the format; `text` also condenses what the functions write. Call once, at start. */
export function setLogFormat(chosen: LogFormat): void {
  format = chosen;
  if (chosen === 'text') {
    condense(process.stdout);
    condense(process.stderr); // Powertools writes warnings and errors there
  }
}

/** One entry of the local stack's own log, on stderr so that it never mixes with the ready line. */
export function logLocal(level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown> = {}): void {
  const time = new Date();
  process.stderr.write(
    format === 'json'
      ? `${JSON.stringify({ level, source: 'local-stack', message, ...fields, time: time.toISOString() })}\n`
      : `${textLine(time, level, 'local-stack', message, fields)}\n`,
  );
}

/** A short description of something thrown, for logs and the dead-letter list. */
export function describeError(error: unknown): { errorType: string; errorMessage: string } {
  if (error instanceof Error) return { errorType: error.name, errorMessage: error.message };
  return { errorType: typeof error, errorMessage: String(error) };
}

// Powertools adds these to every entry; locally they say nothing (one fake account, one region).
const CONTEXT_FIELDS = new Set([
  'level', 'message', 'timestamp', 'service', 'cold_start', 'function_arn', 'function_memory_size',
  'function_name', 'function_request_id', 'sampling_rate', 'xray_trace_id',
]);

/** Rewrites the JSON lines written to `stream`: log entries to text, metric documents dropped. */
function condense(stream: NodeJS.WriteStream): void {
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (typeof chunk !== 'string' && !(chunk instanceof Uint8Array)) return write(chunk, ...rest);
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    const lines = text.split('\n');
    const kept = lines.map((line) => condenseLine(line)).filter((line): line is string => line !== undefined);
    const callback = rest.find((arg): arg is () => void => typeof arg === 'function');
    if (kept.every((line) => line === '')) {
      callback?.();
      return true;
    }
    return write(kept.join('\n'), callback);
  }) as typeof stream.write;
}

/** The line as text; undefined for a metric document; anything not JSON as it is. */
function condenseLine(line: string): string | undefined {
  if (!line.startsWith('{')) return line;
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if ('_aws' in entry) return undefined;
  if (typeof entry.level !== 'string' || typeof entry.message !== 'string') return line;
  const fields = Object.fromEntries(Object.entries(entry).filter(([name]) => !CONTEXT_FIELDS.has(name)));
  const source = typeof entry.function_name === 'string' ? entry.function_name.replace(/^vpce-gatekeeper-local-/, '') : 'function';
  const time = typeof entry.timestamp === 'string' ? new Date(entry.timestamp) : new Date();
  return textLine(time, entry.level, source, entry.message, fields);
}

/** `12:00:01.234 INFO  onConnectionNotification: connection accepted serviceId=… rule=allow:acme-prod` */
function textLine(time: Date, level: string, source: string, message: string, fields: Record<string, unknown>): string {
  const details = Object.entries(fields).map(([name, value]) => `${name}=${formatValue(value)}`);
  return [`${time.toISOString().slice(11, 23)} ${level.toUpperCase().padEnd(5)} ${source}: ${message}`, ...details].join(' ');
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (value !== null && typeof value === 'object' && 'message' in value && 'name' in value) {
    // An error as Powertools writes it: its name and message; the stack only in LOG_FORMAT=json.
    return JSON.stringify(`${String(value.name)}: ${String(value.message)}`);
  }
  return JSON.stringify(value) ?? String(value);
}
