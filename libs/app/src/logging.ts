import { Logger, type LoggerService } from '@nestjs/common';
import { pino, type Logger as Pino } from 'pino';
import pretty from 'pino-pretty';
import type { LogSettings } from '@fleet/config';

/**
 * Every line an app logs goes through one pino logger: JSON lines (one object per line, `time`, `level`, `app`,
 * `context`, `msg` and any fields given) when stdout is not a terminal, readable lines on one. A line about a
 * task carries `task_id`, and a worker's lines carry its `pool` and `worker_id` (process-wide bindings), so a log
 * pipeline can follow one task across the fleet.
 */
let root: Pino | undefined;

function build(app: string, settings: LogSettings): Pino {
  const options = {
    level: settings.level,
    base: { app, pid: process.pid },
    messageKey: 'msg',
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (settings.format === 'json') {
    // Through process.stdout (not straight to fd 1): a closed pipe is an 'error' event runMain swallows.
    return pino(options, process.stdout);
  }
  const prettify = pretty.prettyFactory({
    colorize: Boolean(process.stdout.isTTY),
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,app,context',
    messageFormat: '{if context}[{context}] {end}{msg}',
  });
  return pino(options, { write: (line: string) => void process.stdout.write(prettify(JSON.parse(line) as object)) });
}

/** Sets up the process's logger and routes Nest's (and every `new Logger(name)`) through it. */
export function installLogger(app: string, settings: LogSettings): LoggerService {
  root = build(app, settings);
  const service = new PinoLoggerService();
  Logger.overrideLogger(service);
  return service;
}

/** Fields every later line of this process carries (a worker's `pool` and `worker_id`). */
export function addLogBindings(fields: Record<string, string>): void {
  root = (root ?? build('fleet', { level: 'info', format: 'json' })).child(fields);
}

/** The Nest logger service over the process's pino logger (installLogger first; until then a JSON default). */
export function loggerService(): LoggerService {
  return new PinoLoggerService();
}

type Level = 'info' | 'warn' | 'error' | 'debug' | 'trace' | 'fatal';

/**
 * Nest calls `log(message, ...params, context)`; `error` may put a stack before the context. A message that is
 * an object is logged as fields, its `msg` as the message: `logger.warn({ msg: 'lock lost', task_id })`.
 */
class PinoLoggerService implements LoggerService {
  private write(level: Level, message: unknown, params: unknown[]): void {
    const logger = (root ??= build('fleet', { level: 'info', format: 'json' }));
    const rest = params.filter((p) => p !== undefined);
    const context = typeof rest.at(-1) === 'string' ? (rest.pop() as string) : undefined;
    const fields: Record<string, unknown> = context ? { context } : {};
    let msg: string;
    if (message instanceof Error) {
      fields.err = message;
      msg = message.message;
    } else if (typeof message === 'object' && message !== null) {
      const { msg: m, message: alt, ...others } = message as Record<string, unknown>;
      Object.assign(fields, others);
      msg = typeof m === 'string' ? m : typeof alt === 'string' ? alt : JSON.stringify(m ?? alt ?? '');
    } else {
      msg = String(message);
    }
    if (level === 'error' && typeof rest[0] === 'string' && rest[0].includes('\n')) fields.stack = rest.shift();
    if (rest.length > 0) fields.params = rest;
    logger[level](fields, msg);
  }

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }
}
