import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, waitFor } from '@fleet/testing';
import { parseBenchmarkMetrics } from './handlers/benchmark-task.handler.js';
import { EXIT_NOT_STARTED, runProcess } from './process-runner.js';
import { TailBuffer } from './tail-buffer.js';

const dir = mkdtempSync(join(tmpdir(), 'runner-spec-'));
const run = (argv: string[], signal = new AbortController().signal) => runProcess({ argv, cwd: dir, env: process.env, signal, killGraceMs: 300 });

describe('runProcess', () => {
  it('runs argv without a shell and collects the output', async () => {
    const r = await run(['node', '-e', 'console.log(process.argv[1]); console.error("err")', '$(whoami); echo hi']);
    expect(r).toMatchObject({ exitCode: 0, aborted: false });
    expect(r.stdout.text()).toBe('$(whoami); echo hi\n');
    expect(r.output.text()).toContain('err');
  });

  it('passes the exit code through', async () => {
    expect((await run(['node', '-e', 'process.exit(3)'])).exitCode).toBe(3);
  });

  it('reports a program that cannot start', async () => {
    const r = await run(['definitely-not-a-program-xyz']);
    expect(r.exitCode).toBe(EXIT_NOT_STARTED);
    expect(r.output.text()).toMatch(/cannot start definitely-not-a-program-xyz: .*ENOENT/);
  });

  it('stops the whole tree on abort, even a child that ignores SIGTERM', async () => {
    const pidFile = join(dir, 'grandchild.pid');
    writeFileSync(
      join(dir, 'stubborn.mjs'),
      [
        "import { spawn } from 'node:child_process';",
        "import { writeFileSync } from 'node:fs';",
        "process.on('SIGTERM', () => {});",
        "const c = spawn(process.execPath, ['-e', 'process.on(\"SIGTERM\", () => {}); setInterval(() => {}, 1000)'], { stdio: 'ignore' });",
        `writeFileSync(${JSON.stringify(pidFile)}, String(c.pid));`,
        'setInterval(() => {}, 1000);',
      ].join('\n'),
    );
    const abort = new AbortController();
    const running = run(['node', 'stubborn.mjs'], abort.signal);
    const grandchild = await waitFor(() => existsSync(pidFile) && Number(readFileSync(pidFile, 'utf8')), {
      what: 'the grandchild to start',
      timeoutMs: 10_000,
    });
    abort.abort();
    const r = await running;
    expect(r.aborted).toBe(true);
    expect(r.exitCode).toBe(137);
    await waitFor(() => !isAlive(grandchild), { what: `grandchild ${grandchild} to die`, timeoutMs: 5000 });
  });
});

describe('TailBuffer', () => {
  it('keeps only the last characters', () => {
    const t = new TailBuffer(10);
    for (const s of ['abc', 'defgh', 'ijklmnop', 'q']) t.push(s);
    expect(t.text().endsWith('mnopq')).toBe(true);
    expect(t.text(4)).toBe('nopq');
    expect(t.text().length).toBeLessThanOrEqual(10 + 8);
  });
});

describe('parseBenchmarkMetrics', () => {
  it.each([
    ['the last JSON line', 'warming up\n{"x": 1}\nbatch 1 done\n{"latency_ms": 2.5, "note": "fast", "NaN": null}\n', { latency_ms: 2.5 }],
    ['no JSON at all', 'just text\n', undefined],
    ['a JSON array', '[1, 2]\n', undefined],
    ['broken JSON', '{"latency_ms": \n', undefined],
  ])('%s', (_label, stdout, metrics) => {
    expect(parseBenchmarkMetrics(stdout)).toEqual(metrics);
  });
});
