import { connect, type Socket } from 'node:net';

/** One command as Redis's MONITOR shows it: its name (lower case) and its arguments. */
export interface WatchedCommand {
  name: string;
  args: string[];
}

export interface CommandWatch {
  close(): void;
}

/**
 * Watches every command a Redis runs (MONITOR) over a socket of its own, and calls `onCommand` for each.
 *
 * Not ioredis's `monitor()`: it enters monitoring mode in a promise callback after MONITOR's `+OK`, so when the
 * `+OK` and the first watched commands arrive in one read, it takes those for replies to commands it never sent,
 * and emits "Command queue state error" (seen in CI). Here the replies are read in order from the start: the first
 * line is MONITOR's answer, and every line after it a watched command.
 */
export async function watchCommands(redisUrl: string, onCommand: (command: WatchedCommand) => void): Promise<CommandWatch> {
  const url = new URL(redisUrl);
  const socket: Socket = connect({ host: url.hostname, port: Number(url.port || 6379) });
  socket.setEncoding('utf8');
  const auth = url.password
    ? [resp(url.username ? ['AUTH', decodeURIComponent(url.username), decodeURIComponent(url.password)] : ['AUTH', decodeURIComponent(url.password)])]
    : [];
  // AUTH (when the address has a password) and MONITOR each answer one line before the watched commands begin.
  let answersDue = auth.length + 1;
  let pending = '';
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    socket.once('error', fail);
    socket.once('close', () => fail(new Error('the MONITOR connection closed before MONITOR was answered')));
    socket.on('data', (chunk: string) => {
      pending += chunk;
      let end: number;
      while ((end = pending.indexOf('\r\n')) >= 0) {
        const line = pending.slice(0, end);
        pending = pending.slice(end + 2);
        if (answersDue > 0) {
          if (!line.startsWith('+')) return fail(new Error(`MONITOR: Redis answered ${line}`));
          if (--answersDue === 0) {
            socket.removeAllListeners('error').removeAllListeners('close');
            // Errors after this point end the watch; the test sees it in what it counted.
            socket.on('error', () => undefined);
            resolve();
          }
          continue;
        }
        const command = parseMonitorLine(line);
        if (command) onCommand(command);
      }
    });
    socket.write([...auth, resp(['MONITOR'])].join(''));
  });
  return { close: () => socket.destroy() };
}

const resp = (args: string[]) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;

/** `+1700000000.123456 [0 127.0.0.1:5000] "hset" "key" "a \"quoted\" value"` → { name: 'hset', args: ['key', 'a "quoted" value'] }. */
export function parseMonitorLine(line: string): WatchedCommand | undefined {
  if (!line.startsWith('+')) return undefined;
  const start = line.indexOf('] "');
  if (start < 0) return undefined;
  const parts = [...line.slice(start + 2).matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => unescape(m[1]));
  if (parts.length === 0) return undefined;
  return { name: parts[0].toLowerCase(), args: parts.slice(1) };
}

// MONITOR quotes arguments as sdscatrepr does: \" \\ \n \r \t \a \b and \xHH for other bytes.
const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b' };
const unescape = (s: string) =>
  s.replace(/\\(x[0-9a-f]{2}|.)/g, (_, c: string) => (c.length === 3 ? String.fromCharCode(parseInt(c.slice(1), 16)) : (ESCAPES[c] ?? c)));
