import { STANDBY_GO_LINE } from '@fleet/app';
import { prepareQueuedTaskParser } from '@fleet/contracts';

/**
 * A warm spare's wait (WORKER_STANDBY=1): its code is loaded and the payload check compiled, which is most of
 * a worker's start-up; it holds no Redis connection, no registry entry and no guard, and takes no work. Resolves
 * when the resource manager writes `go`; the process exits when stdin closes or a signal comes first (the
 * manager went away or retired the spare). What follows `go` is an ordinary worker start.
 */
export async function standBy(): Promise<void> {
  prepareQueuedTaskParser();
  await new Promise<void>((resolve) => {
    let buffered = '';
    const leave = () => process.exit(0);
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      if (!buffered.split('\n').slice(0, -1).includes(STANDBY_GO_LINE)) return;
      process.stdin.off('data', onData).off('end', leave);
      process.off('SIGTERM', leave).off('SIGINT', leave);
      process.stdin.pause();
      resolve();
    };
    process.stdin.on('data', onData).on('end', leave);
    // Before `go` there is nothing to drain: a signal ends the spare at once.
    process.on('SIGTERM', leave).on('SIGINT', leave);
  });
}
