import { jest } from '@jest/globals';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAlive, waitFor } from '@fleet/testing';
import { pidsWithCookie, TASK_COOKIE_VAR } from './process-tree.js';

// These tests start real processes (Python, pytest, node). Each wait inside is bounded by the code under test;
// this limit, above those bounds, covers hooks and tests without their own: jest's default 5 s was too short for
// a warm pytest server's start on a loaded CI machine.
jest.setTimeout(60_000);

const lastPid = () => Number(readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));

describe('the cookie sweep', () => {
  it('finds a process that left its group, reading only the PIDs handed out since its attempt began', async () => {
    const cookie = randomBytes(16).toString('hex');
    const firstPid = lastPid() + 1;
    const startedAt = Date.now();
    const child = spawn('sleep', ['60'], { detached: true, stdio: 'ignore', env: { ...process.env, [TASK_COOKIE_VAR]: cookie } });
    const pid = child.pid as number;
    try {
      await waitFor(() => pidsWithCookie(TASK_COOKIE_VAR, cookie).includes(pid), { what: 'the process to carry its cookie' });
      expect(pidsWithCookie(TASK_COOKIE_VAR, cookie, { firstPid, startedAt })).toEqual([pid]);
      // A scope that begins after it (a later process took the next PID): the sweep does not read it (it is not a full scan).
      // Its start is now: with a pid_max of 32,768 a scope holds for 0.33 s only, and a loaded machine can take longer
      // than that to get here from `startedAt`.
      await new Promise((resolve) => spawn('true').on('exit', resolve));
      expect(pidsWithCookie(TASK_COOKIE_VAR, cookie, { firstPid: pid + 1, startedAt: Date.now() })).toEqual([]);
      // An attempt old enough for the PID counter to have wrapped: every PID is read again.
      expect(pidsWithCookie(TASK_COOKIE_VAR, cookie, { firstPid: pid + 1, startedAt: 0 })).toEqual([pid]);
    } finally {
      process.kill(pid, 'SIGKILL');
      await waitFor(() => !isAlive(pid), { what: 'the process to end' });
    }
  });

  it("does not take a thread for a process: a thread started within the scope by a process from before it is not the attempt's", async () => {
    // A warm pytest server carries its own cookie and is spared by PID; a thread it starts after the file began has
    // an ID in the file's scope, and signalling that ID would end the server.
    const cookie = randomBytes(16).toString('hex');
    const script =
      'import sys, threading, time\nthreading.Thread(target=lambda: (print(threading.get_native_id(), flush=True), time.sleep(60)), daemon=True).start()\nsys.stdin.read()';
    const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'ignore'], env: { ...process.env, [TASK_COOKIE_VAR]: cookie } });
    const pid = child.pid as number;
    try {
      const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
      const tid = Number(line);
      expect(tid).toBeGreaterThan(pid);
      expect(pidsWithCookie(TASK_COOKIE_VAR, cookie, { firstPid: tid, startedAt: Date.now() })).toEqual([]);
      // Its process, in scope, is found.
      expect(pidsWithCookie(TASK_COOKIE_VAR, cookie, { firstPid: pid, startedAt: Date.now() })).toEqual([pid]);
    } finally {
      child.kill('SIGKILL');
      await waitFor(() => !isAlive(pid), { what: 'the process to end' });
    }
  });
});
