/**
 * The local stack's own log: one JSON line per event on stderr, so that it never
 * mixes with the ready line on stdout.
 */
export function logLocal(level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ level, source: 'local-stack', message, ...fields, time: new Date().toISOString() })}\n`);
}

/** A short description of something thrown, for logs and the dead-letter list. */
export function describeError(error: unknown): { errorType: string; errorMessage: string } {
  if (error instanceof Error) return { errorType: error.name, errorMessage: error.message };
  return { errorType: typeof error, errorMessage: String(error) };
}
