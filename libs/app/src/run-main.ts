import { Logger } from '@nestjs/common';
import { ConfigError } from '@fleet/config';

export interface Closable {
  close(): Promise<void>;
}

/** Exit code of a process whose configuration is wrong: a supervisor must not restart it in a loop. */
export const EXIT_CONFIG_ERROR = 78;

/**
 * Runs one app process. A configuration error prints one readable line and exits 78 (EX_CONFIG);
 * SIGTERM or SIGINT closes the app, which drains it (workers finish held tasks), and exits 0;
 * a second signal during the drain exits 1 at once.
 */
export async function runMain(name: string, start: () => Promise<Closable>): Promise<void> {
  const logger = new Logger(name);
  process.on('unhandledRejection', (reason) => {
    logger.error(`unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`);
  });
  let app: Closable | undefined;
  let stopping: NodeJS.Signals | undefined;
  const close = (closable: Closable) =>
    closable.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error(`shutdown failed: ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
      },
    );
  // Handlers go in first: a signal during start-up is honoured as soon as there is something to close.
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn(`${signal} again: exiting without draining`);
      process.exit(1);
    }
    stopping = signal;
    logger.log(`${signal}: shutting down`);
    if (app) void close(app);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  try {
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
