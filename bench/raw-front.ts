// The least an HTTP front end can cost: a bare `node:http` server that parses a JSON body and adds it to a queue
// with bare BullMQ, nothing else (no validation, auth, rate limit or cap). The pickup bench puts it between the
// client and bare BullMQ, so the fleet's pickup can be read against what any service in front of the queue pays
// for one more process and one more hop on this machine. Prints the port once its queue's connection is up.
import { createServer } from 'node:http';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

const [url, prefix, name] = process.argv.slice(2) as [string, string, string];
const connection = new Redis(url, { maxRetriesPerRequest: null });
const queue = new Queue(name, { connection, prefix });
await queue.waitUntilReady();
const server = createServer((req, res) => {
  let text = '';
  req.setEncoding('utf8').on('data', (c: string) => (text += c));
  req.on('end', () => {
    let data: object;
    try {
      data = JSON.parse(text) as object;
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'body: not JSON' }));
      return;
    }
    queue.add('noop', data).then(
      (job) => {
        res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id: job.id }));
      },
      (err: Error) => {
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: err.message }));
      },
    );
  });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`port ${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  void queue.close().then(() => connection.quit().then(() => process.exit(0)));
});
