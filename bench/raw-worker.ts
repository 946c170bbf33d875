// The raw BullMQ baseline: one process, one Worker with an inline no-op processor. Prints "ready" once its
// connection is up, so the benchmark starts the clock only when every process is waiting for work.
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

const [url, prefix, queue, concurrency] = process.argv.slice(2) as [string, string, string, string];
const connection = new Redis(url, { maxRetriesPerRequest: null });
const worker = new Worker(queue, async () => 1, { connection, prefix, concurrency: Number(concurrency) });
await worker.waitUntilReady();
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void worker.close().then(() => connection.quit().then(() => process.exit(0)));
});
