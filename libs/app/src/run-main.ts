import { Logger } from '@nestjs/common';
import { survivePipeErrors } from './pipe-errors.js';
import { ConfigError, loadLogSettings } from '@fleet/config';
import { installLogger } from './logging.js';

export interface Closable {
  close(): Promise<void>;
}

export interface MainOptions {
  /** After a signal, how long closing may take before the process exits anyway (none: as long as it takes). */
  shutdownGraceMs?: number;
}

/** Exit code of a process whose configuration is wrong: a supervisor must not restart it in a loop. */
export const EXIT_CONFIG_ERROR = 78;

/** The line a resource manager writes to a warm spare worker's stdin to make it a worker (WORKER_STANDBY=1). */
export const STANDBY_GO_LINE = 'go';

/**
 * Runs one app process. A configuration error prints one readable line and exits 78 (EX_CONFIG);
 * SIGTERM or SIGINT closes the app, which drains it (workers finish held tasks), and exits 0. The same
 * signal again during the drain exits 1 at once (a second Ctrl-C); a different one is the same request made
 * twice (a terminal's SIGINT to the whole group, then a supervisor's SIGTERM) and changes nothing. With a
 * shutdown grace, closing that takes longer exits 1 with a message.
 */
export async function runMain(name: string, start: () => Promise<Closable & MainOptions>): Promise<void> {
  survivePipeErrors();
  const logger = new Logger(name);
  process.on('unhandledRejection', (reason) => {
    logger.error(`unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`);
  });
  let app: (Closable & MainOptions) | undefined;
  let stopping: NodeJS.Signals | undefined;
  const close = (closable: Closable & MainOptions) => {
    if (closable.shutdownGraceMs !== undefined) {
      const grace = closable.shutdownGraceMs;
      setTimeout(() => {
        logger.error(`shutdown did not finish within ${grace} ms: exiting anyway`);
        process.exit(1);
      }, grace).unref();
    }
    return closable.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error(`shutdown failed: ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
      },
    );
  };
  // Handlers go in first: a signal during start-up is honoured as soon as there is something to close.
  const stop = (signal: NodeJS.Signals) => {
    if (stopping === signal) {
      logger.warn(`${signal} again: exiting without draining`);
      process.exit(1);
    }
    if (stopping) return;
    stopping = signal;
    logger.log(`${signal}: shutting down`);
    if (app) void close(app);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  try {
    installLogger(name, loadLogSettings(process.env, Boolean(process.stdout.isTTY)));
    app = await start();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${name}: configuration error in ${err.describe()}\n`);
      process.exit(EXIT_CONFIG_ERROR);
    }
    process.stderr.write(`${name}: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  }
  if (stopping) void close(app);
}
