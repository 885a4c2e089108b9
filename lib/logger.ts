import { AsyncLocalStorage } from 'node:async_hooks';
import type { Context } from 'aws-lambda';
import { config, xrayTraceId } from './config';

/**
 * The one structured logger: one JSON object per line, in the format of Powertools for AWS
 * Lambda's Logger, which this replaces: `level`, `message`, `timestamp`, `service`, the
 * invocation's context (`cold_start`, `function_name`, `function_request_id`, …), the keys the
 * invocation appended, then the entry's own fields. Errors, wherever they are in those fields, are
 * written as `{ name, location, message, stack, cause, …their own fields }`. DEBUG and INFO go to
 * stdout, WARN and ERROR to stderr. The level comes from POWERTOOLS_LOG_LEVEL (default INFO).
 *
 * Written here rather than with Powertools: these few lines are all of it this stack uses, and the
 * library cost every cold start more than they do (bench/README.md).
 */
class Logger {
  /**
   * Each invocation's own context and keys, kept in its asynchronous scope: a runtime that runs
   * several invocations in one process at once (Lambda with AWS_LAMBDA_MAX_CONCURRENCY, or the local
   * stack, which runs every function in one process) keeps each one's log entries its own.
   */
  readonly #invocations = new AsyncLocalStorage<Invocation>();
  /** Entries written outside any invocation (at start, by the local stack). */
  readonly #outside: Invocation = { context: {}, keys: {} };
  #coldStart = true;

  constructor(private readonly service: string) {}

  debug(message: string, fields?: Fields): void {
    this.#write('DEBUG', message, fields);
  }

  info(message: string, fields?: Fields): void {
    this.#write('INFO', message, fields);
  }

  warn(message: string, fields?: Fields): void {
    this.#write('WARN', message, fields);
  }

  error(message: string, fields?: Fields): void {
    this.#write('ERROR', message, fields);
  }

  /** Every later entry of this invocation carries `keys`; they are forgotten when it ends. */
  appendKeys(keys: Record<string, unknown>): void {
    Object.assign(this.#current().keys, keys);
  }

  /**
   * Runs one invocation: every entry it writes carries its context (the first invocation of the
   * process is the cold start) and the keys it appends, which end with it.
   */
  runInvocation<T>(context: Context, run: () => Promise<T>): Promise<T> {
    const invocation: Invocation = {
      context: {
        // Lambda calls provisioned concurrency's environments ahead of any request: none of their invocations is a cold start.
        cold_start: this.#coldStart && config().AWS_LAMBDA_INITIALIZATION_TYPE !== 'provisioned-concurrency',
        function_arn: context.invokedFunctionArn,
        function_memory_size: context.memoryLimitInMB,
        function_name: context.functionName,
        function_request_id: context.awsRequestId,
      },
      keys: {},
    };
    this.#coldStart = false;
    return this.#invocations.run(invocation, run);
  }

  #current(): Invocation {
    return this.#invocations.getStore() ?? this.#outside;
  }

  #write(level: Level, message: string, fields: Fields | undefined): void {
    if (LEVELS[level] < LEVELS[config().POWERTOOLS_LOG_LEVEL]) return;
    const { context, keys } = this.#current();
    const entry = {
      level,
      message,
      timestamp: new Date().toISOString(),
      service: this.service,
      ...context,
      xray_trace_id: xrayTraceId(),
      ...keys,
      ...(fields instanceof Error ? { error: fields } : fields),
    };
    const line = `${JSON.stringify(withoutEmpty(entry), jsonReplacer())}\n`;
    (LEVELS[level] >= LEVELS.WARN ? process.stderr : process.stdout).write(line);
  }
}

interface Invocation {
  context: Record<string, unknown>;
  keys: Record<string, unknown>;
}

/** An entry's own fields, or an error (written as the field `error`). */
type Fields = Record<string, unknown> | Error;

/** The levels POWERTOOLS_LOG_LEVEL names, least severe first; SILENT writes nothing. */
export const LEVELS = { TRACE: 6, DEBUG: 8, INFO: 12, WARN: 16, ERROR: 20, CRITICAL: 24, SILENT: 28 } as const;
type Level = keyof typeof LEVELS;

/** The entry without its empty keys (undefined, null, ''), as Powertools writes it. */
function withoutEmpty(entry: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(entry).filter(([, value]) => value !== undefined && value !== null && value !== ''));
}

/** Errors as objects, bigints as strings, and a value met again inside itself left out. */
function jsonReplacer(): (this: unknown, key: string, value: unknown) => unknown {
  const ancestors: unknown[] = [];
  return function (this: unknown, _key, value) {
    const replaced = value instanceof Error ? errorFields(value) : typeof value === 'bigint' ? value.toString() : value;
    if (typeof replaced !== 'object' || replaced === null) return replaced;
    while (ancestors.length > 0 && ancestors.at(-1) !== this) ancestors.pop();
    if (ancestors.includes(replaced)) return undefined;
    ancestors.push(replaced);
    return replaced;
  };
}

function errorFields(error: Error): Record<string, unknown> {
  const { name, message, stack, cause, ...own } = error as Error & Record<string, unknown>;
  return { name, location: codeLocation(stack), message, stack, cause: cause instanceof Error ? errorFields(cause) : cause, ...own };
}

/** `file:line` of the first frame of a stack that names one. */
function codeLocation(stack: string | undefined): string {
  for (const frame of stack?.split('\n') ?? []) {
    const match = /\(([^()]*?):(\d+?):(\d+?)\)\\?$/.exec(frame);
    if (match) return `${match[1]}:${Number(match[2])}`;
  }
  return '';
}

export const logger = new Logger('vpce-gatekeeper');
