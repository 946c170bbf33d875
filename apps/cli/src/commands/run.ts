import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { type Api, call, CliError } from '../api.js';
import { serveBuild } from '../ci-node.js';
import { sourceFromCheckout } from '../source-auto.js';

interface FileView {
  key: string;
  state: string;
  attempts: number;
  duration_ms: number | null;
  reason: string | null;
  message: string | null;
  output_tail: string | null;
  quarantined: boolean;
  cases?: Array<{ name: string; status: string; message?: string; output?: string; quarantined: boolean }>;
}

interface RunView {
  id: string;
  name: string;
  state: string;
  counts: { total: number; done: number; failed: number; error: number; flaky: number; skipped?: number; cancelled: number; running: number };
  progress: number;
  eta_s: number | null;
  flaky: string[];
  pool: string;
  source: { repo: string; commit: string; ref?: string } | null;
  files: FileView[];
}

/** `--source auto` (this checkout's repository and HEAD) or `--source <repo url> --commit <sha|branch|tag>`. */
async function sourceOption(source: string, commit: string | undefined, allowDirty: boolean): Promise<{ repo: string; commit: string }> {
  if (source === 'auto') {
    const found = await sourceFromCheckout(process.cwd(), allowDirty);
    return commit ? { ...found, commit } : found;
  }
  if (!commit) throw new CliError('--source <repo url> needs --commit <sha, branch or tag> (or use --source auto in a checkout)', 2);
  return { repo: source, commit };
}

const FINAL = new Set(['passed', 'failed', 'cancelled', 'error']);
const EXIT: Record<string, number> = { passed: 0, failed: 1 };

function bar(r: RunView, width = 30): string {
  const filled = Math.round(r.progress * width);
  const eta = r.eta_s === null ? '' : `  eta ${r.eta_s}s`;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${r.counts.done}/${r.counts.total}  running ${r.counts.running}  failed ${r.counts.failed + r.counts.error}${r.counts.flaky ? `  flaky ${r.counts.flaky}` : ''}${eta}`;
}

const lastLines = (text: string | null | undefined, n: number) =>
  (text ?? '')
    .trimEnd()
    .split('\n')
    .slice(-n)
    .map((l) => `      ${l}`)
    .join('\n');

/**
 * `fleet run <files|folders|globs…> [--pool cpu] [--retries 1] [--junit out.xml] [--label k=v]… [--name n]
 *  [--source auto [--allow-dirty] | --source <repo url> --commit <sha|branch|tag>]`:
 * submits a run, shows its progress (a bar on a terminal, a line every few seconds otherwise), prints a
 * summary (failures with their output, flaky tests, the slowest files), writes the JUnit report, and exits 0
 * when the run passed, 1 when it failed, 2 on an error (or when cancelled). Ctrl-C cancels what is queued.
 *
 * With `--build <id> --node-index i --node-total K [--slots N] [--only-failed <earlier build>]` this process is
 * one of a CI build's K parallel nodes (see ci-node.ts): the files run here, from this checkout, N at a time,
 * taken from the build's own queue until the run has ended; every node exits with the run's verdict.
 */
export async function run(a: Api, argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      pool: { type: 'string' },
      retries: { type: 'string', default: '0' },
      junit: { type: 'string' },
      label: { type: 'string', multiple: true, default: [] },
      name: { type: 'string' },
      'timeout-ms': { type: 'string' },
      'poll-ms': { type: 'string', default: '1000' },
      source: { type: 'string' },
      commit: { type: 'string' },
      'allow-dirty': { type: 'boolean', default: false },
      build: { type: 'string' },
      'node-index': { type: 'string', default: '0' },
      'node-total': { type: 'string', default: '1' },
      slots: { type: 'string', default: '1' },
      'only-failed': { type: 'string' },
    },
  });
  if (positionals.length === 0)
    throw new CliError(
      'usage: fleet run <files|folders|globs…> [--pool cpu] [--retries 1] [--junit out.xml] [--label k=v] [--source auto|<repo> [--commit <ref>]]',
      2,
    );
  const labels: Record<string, string> = {};
  for (const l of values.label) {
    const eq = l.indexOf('=');
    if (eq < 1) throw new CliError(`--label ${l}: must be name=value`, 2);
    labels[l.slice(0, eq)] = l.slice(eq + 1);
  }
  if (values.build !== undefined) {
    if (values.source) throw new CliError('--build runs the files of this checkout: it takes no --source', 2);
    const n = (name: string, v: string, min: number) => {
      const x = Number(v);
      if (!Number.isInteger(x) || x < min) throw new CliError(`--${name} ${v}: must be a whole number of at least ${min}`, 2);
      return x;
    };
    const nodeIndex = n('node-index', values['node-index'], 0);
    const nodeTotal = n('node-total', values['node-total'], 1);
    if (nodeIndex >= nodeTotal) throw new CliError(`--node-index ${nodeIndex} must be below --node-total ${nodeTotal} (indexes count from 0)`, 2);
    const served = await serveBuild(a, {
      build: values.build,
      nodeIndex,
      nodeTotal,
      slots: n('slots', values.slots, 1),
      patterns: positionals,
      retries: Number(values.retries),
      labels,
      ...(values.pool && { pool: values.pool }),
      ...(values.name && { name: values.name }),
      ...(values['timeout-ms'] && { timeoutMs: Number(values['timeout-ms']) }),
      ...(values['only-failed'] && { onlyFailedOf: values['only-failed'] }),
    });
    const mine = served.ran.filter((r) => r.status !== 'lost');
    process.stderr.write(
      `this node ran ${mine.length} attempt(s) of ${new Set(mine.map((r) => r.file)).size} file(s) in ${(mine.reduce((t, r) => t + r.ms, 0) / 1000).toFixed(1)} s\n`,
    );
    return finish(a, `/builds/${encodeURIComponent(values.build)}`, values.junit);
  }
  const spec = {
    name: values.name ?? `${positionals.join(' ')}`.slice(0, 200),
    tests: positionals,
    retries: Number(values.retries),
    labels,
    ...(values.pool && { pool: values.pool }),
    ...(values['timeout-ms'] && { timeout_ms: Number(values['timeout-ms']) }),
    ...(values.source && { source: await sourceOption(values.source, values.commit, values['allow-dirty']) }),
  };
  const created = await call<RunView>(a, a.coordinator, 'POST', '/runs', spec);
  const tty = process.stderr.isTTY;
  const at = created.source ? ` at ${created.source.commit.slice(0, 12)} of ${created.source.repo}` : '';
  process.stderr.write(`run ${created.id}: ${created.counts.total} file(s) on pool ${created.pool}${at}\n`);

  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(2);
    interrupted = true;
  };
  process.on('SIGINT', onSigint);
  let view = created;
  let lastLine = 0;
  try {
    while (!FINAL.has(view.state)) {
      if (interrupted) {
        process.stderr.write(`\ncancelling the run's queued tasks (running ones finish)…\n`);
        view = await call<RunView>(a, a.coordinator, 'DELETE', `/runs/${created.id}`);
        process.stderr.write(`${bar(view)}\n`);
        return 2;
      }
      await sleep(Number(values['poll-ms']));
      view = await call<RunView>(a, a.coordinator, 'GET', `/runs/${created.id}`);
      if (tty) process.stderr.write(`\r${bar(view)}\u001b[K`);
      else if (Date.now() - lastLine > 5000) {
        lastLine = Date.now();
        process.stderr.write(`${bar(view)}\n`);
      }
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
  if (tty) process.stderr.write('\n');
  return finish(a, `/runs/${created.id}`, values.junit);
}

/** Prints the ended run's summary, writes its JUnit report when asked, and gives the exit code of its verdict. */
async function finish(a: Api, path: string, junit: string | undefined): Promise<number> {
  const full = await call<RunView>(a, a.coordinator, 'GET', `${path}?cases=true`);
  summarize(full);
  if (junit) {
    const xml = await call<string>(a, a.coordinator, 'GET', `${path}/junit.xml`, undefined, 'text');
    writeFileSync(resolve(junit), xml);
    console.log(`JUnit report: ${resolve(junit)}`);
  }
  return EXIT[full.state] ?? 2;
}

function summarize(r: RunView): void {
  console.log(`\nrun ${r.id} (${r.name}): ${r.state.toUpperCase()}`);
  if (r.source) console.log(`  tested commit ${r.source.commit}${r.source.ref ? ` (${r.source.ref})` : ''} of ${r.source.repo}`);
  console.log(
    `  ${r.counts.total} file(s): ${r.counts.total - r.counts.failed - r.counts.error - r.counts.cancelled} passed (${r.counts.flaky} flaky, ${r.counts.skipped ?? 0} skipped: ran no test), ${r.counts.failed} failed, ${r.counts.error} error, ${r.counts.cancelled} cancelled`,
  );
  const bad = r.files.filter((f) => f.state === 'failed' || f.state === 'error');
  for (const f of bad) {
    console.log(
      `\n  ${f.state.toUpperCase()} ${f.key}${f.quarantined ? ' (quarantined: does not fail the run)' : ''}: ${f.message ?? f.reason ?? ''}`,
    );
    const failing = (f.cases ?? []).filter((c) => c.status === 'failed' || c.status === 'error');
    for (const c of failing.slice(0, 10)) {
      console.log(`    ✗ ${c.name}${c.quarantined ? ' (quarantined)' : ''}: ${c.message ?? ''}`);
      if (c.output) console.log(lastLines(c.output, 8));
    }
    if (failing.length === 0) console.log(lastLines(f.output_tail, 15));
  }
  for (const f of r.files.filter((x) => x.state === 'cancelled' && x.reason)) console.log(`  cancelled ${f.key}: ${f.reason}`);
  if (r.flaky.length > 0) console.log(`\n  flaky (failed, then passed on a retry):\n${r.flaky.map((t) => `    ~ ${t}`).join('\n')}`);
  const slowest = [...r.files]
    .filter((f) => f.duration_ms !== null)
    .sort((x, y) => (y.duration_ms ?? 0) - (x.duration_ms ?? 0))
    .slice(0, 5);
  if (slowest.length > 0)
    console.log(`\n  slowest:\n${slowest.map((f) => `    ${((f.duration_ms ?? 0) / 1000).toFixed(2).padStart(8)} s  ${f.key}`).join('\n')}`);
}
