import type { ChildProcess } from 'node:child_process';
import type { Duplex } from 'node:stream';
import { createInterface } from 'node:readline';
import { TailBuffer } from './tail-buffer.js';

/**
 * Follows a helper process spoken to in JSON lines (the warm pytest server, the launcher): each message it writes
 * on stdout goes to `onMessage`, lines that are not JSON are skipped, and `onEnd` hears why it ended (it could not
 * be started, or it exited: with the end of its stderr). `onEnd` may be called twice (Node may emit 'exit' after
 * 'error'): the callers' ends are idempotent. `channel`: where it speaks, when not on its stdin and stdout (a
 * socket pair on another fd).
 */
export function followJsonLines<M>(child: ChildProcess, onMessage: (m: M) => void, onEnd: (why: string) => void, channel?: Duplex): void {
  const errors = new TailBuffer(4096);
  child.stderr?.setEncoding('utf8').on('data', (s: string) => errors.push(s));
  child.stdin?.on('error', () => undefined);
  channel?.on('error', () => undefined);
  createInterface({ input: (channel ?? child.stdout) as NodeJS.ReadableStream }).on('line', (line) => {
    let m: M;
    try {
      m = JSON.parse(line) as M;
    } catch {
      return;
    }
    onMessage(m);
  });
  child.on('error', (err) => onEnd(`cannot start: ${err.message}`));
  child.on('exit', (code, signal) => onEnd(`exited (${signal ?? code})${errors.text() ? `: ${errors.text().trim()}` : ''}`));
}
