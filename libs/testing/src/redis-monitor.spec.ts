import { createServer, type Server } from 'node:net';
import { parseMonitorLine, type WatchedCommand, watchCommands } from './redis-monitor.js';

describe('watchCommands', () => {
  let server: Server;
  afterEach(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** A server that answers MONITOR with `reply`, written in one piece. */
  const serve = (reply: string) =>
    new Promise<string>((resolve) => {
      server = createServer((socket) => {
        socket.once('data', () => socket.end(reply));
      }).listen(0, '127.0.0.1', () => {
        const address = server.address();
        resolve(`redis://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`);
      });
    });

  it('sees the commands that arrive in the same read as the answer to MONITOR', async () => {
    // What made ioredis's monitor() emit "Command queue state error" in CI: the +OK and a watched command together.
    const url = await serve('+OK\r\n+1796317323.999109 [0 127.0.0.1:39278] "multi"\r\n+1796317323.999255 [0 127.0.0.1:39278] "hset" "k" "a"\r\n');
    const seen: WatchedCommand[] = [];
    let both = () => undefined as void;
    const bothSeen = new Promise<void>((resolve) => (both = resolve));
    const watch = await watchCommands(url, (c) => {
      if (seen.push(c) === 2) both();
    });
    await bothSeen;
    watch.close();
    expect(seen).toEqual([
      { name: 'multi', args: [] },
      { name: 'hset', args: ['k', 'a'] },
    ]);
  });

  it('fails with what Redis answered when MONITOR is refused', async () => {
    const url = await serve("-NOPERM this user has no permissions to run the 'monitor' command\r\n");
    await expect(watchCommands(url, () => undefined)).rejects.toThrow(/MONITOR: Redis answered -NOPERM/);
  });
});

describe('parseMonitorLine', () => {
  it('reads the command and its arguments, unquoting what MONITOR escaped', () => {
    expect(parseMonitorLine('+1700000000.123456 [0 127.0.0.1:5000] "LRANGE" "p:s|model=a" "0" "-1"')).toEqual({
      name: 'lrange',
      args: ['p:s|model=a', '0', '-1'],
    });
    expect(parseMonitorLine(String.raw`+1.0 [0 unix:/tmp/r.sock] "set" "k" "say \"hi\"\n\\\x01"`)).toEqual({
      name: 'set',
      args: ['k', 'say "hi"\n\\\x01'],
    });
  });

  it('ignores what is not a watched command', () => {
    expect(parseMonitorLine('+OK')).toBeUndefined();
    expect(parseMonitorLine('-ERR nope')).toBeUndefined();
  });
});
