// Vitest setup file: keeps the functions' own output out of vitest's report. The handlers write
// CloudWatch embedded-metric-format documents and JSON log lines straight to stdout; dozens of such
// lines would bury the report. VPCE_TEST_OUTPUT=full lets them through (see docs/architecture.md,
// Tests). Tests that read those lines (vi.spyOn(process.stdout, 'write')) still see every one of them.

if (process.env.VPCE_TEST_OUTPUT !== 'full') quiet(process.stdout, (line) => isStructuredLine(line));

/** A JSON object on one line with an EMF `_aws` member, or a log entry (level, message, timestamp: lib/logger.ts). */
function isStructuredLine(line: string): boolean {
  if (!line.startsWith('{')) return false;
  try {
    const value = JSON.parse(line) as Record<string, unknown>;
    return '_aws' in value || ('level' in value && 'message' in value && 'timestamp' in value);
  } catch {
    return false;
  }
}

function quiet(stream: NodeJS.WriteStream, drop: (line: string) => boolean): void {
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) || chunk instanceof Uint8Array ? Buffer.from(chunk).toString('utf8') : undefined;
    const lines = text?.split('\n').filter((line) => line.trim() !== '');
    if (lines && lines.length > 0 && lines.every(drop)) {
      const callback = rest.find((arg): arg is () => void => typeof arg === 'function');
      callback?.();
      return true;
    }
    return write(chunk, ...rest);
  }) as typeof stream.write;
}
