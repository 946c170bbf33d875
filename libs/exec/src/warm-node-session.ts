import { basename } from 'node:path';
import { resolveProgram } from './process-runner.js';

/**
 * The `node --test` session server (`runners.warm: {".mjs": "session"}` for a Node runner), run as
 * `node <the template's options> --test-reporter=<NODE_SESSION_REPORTER> --input-type=module -e <this> <home
 * cgroup or ""> <plan: {"cwd", "files"}>` in the folder the files run in: one Node process per slot that runs file after file, as
 * `node --test --experimental-test-isolation=none` does in later Node versions. Per file it takes the attempt's
 * environment and folder, moves itself into the attempt's cgroup (and back after), imports the file inside a
 * suite of its own (so the file's top-level hooks, `before`, `beforeEach`, `after`, belong to its own tests only),
 * waits for the suite's end, writes the file's own JUnit report (Node's junit reporter over the file's events,
 * with the suite taken out: the report a `node --test-reporter=junit <file>` writes) and gives the exit code such a
 * cold run gives (1 when a test, a hook or the import failed). Each file is imported afresh (a query of its own on
 * its URL), and the CommonJS modules loaded from under the folder during it are forgotten; ES modules it imported
 * besides stay loaded for the files after it, as does whatever else it changed in the process.
 *
 * Protocol, JSON lines on fd 3 (a socket pair; stdin is /dev/null; fds 1 and 2 are the server's output file,
 * opened for appending): requests `{"file", "junit", "cwd", "env", "cgroup", "cap", "keep"}`; first
 * `{"ready": version}`, then per request `{"started": pid}` once the output is emptied and the cgroup joined, and
 * `{"exit": code, "dropped": bytes, "retire"?: true}` (retire: it has run `files` files or grown past 1 GiB, as
 * ES modules cannot be unloaded: end it rather than give it another file). The channel's end ends it. An error of its own while a file runs: the file ends with exit 3 and the
 * server exits. Output beyond `cap` bytes is cut to its last `keep` bytes, four times a second.
 */
export const NODE_SESSION_SOURCE = String.raw`
import { describe, test } from 'node:test';
import { junit } from 'node:test/reporters';
import { fstatSync, ftruncateSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import { join, resolve, sep } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

const [home, planText] = process.argv.slice(1);
const plan = JSON.parse(planText);
const channel = new Socket({ fd: 3, readable: true, writable: true });
const send = (m, then) => channel.write(JSON.stringify(m) + '\n', then);
const cjs = createRequire(join(plan.cwd, 'fleet-session.cjs')).cache;
const nonce = Math.random().toString(36).slice(2);
// A server that has run plan.files files, or grown past this many bytes, asks to be ended after its file.
const RETIRE_RSS = 1024 * 1024 * 1024;

// The file running now: its suite's name, its sentinel's, its events, and what the sentinel's end resolves.
let current;
globalThis[Symbol.for('fleet.node-session')] = (e) => {
  if (current === undefined) return;
  const name = e.data && e.data.name;
  if (name === current.end) {
    if (e.type === 'test:pass' || e.type === 'test:fail') current.done();
  } else if (name === current.label || (e.data && e.data.nesting > 0)) current.events.push(e);
};

// The output cap: fds 1 and 2 share one description, opened for appending, so cutting it keeps later writes at its end.
let cap = Infinity;
let keep = 0;
let dropped = 0;
setInterval(() => {
  const size = fstatSync(1).size;
  if (size <= cap) return;
  const tail = Buffer.alloc(keep);
  const got = readSync(1, tail, 0, keep, size - keep);
  ftruncateSync(1, 0);
  writeSync(1, tail, 0, got);
  dropped += size - got;
}, 250).unref();

const move = (cgroup) => writeFileSync(join(cgroup, 'cgroup.procs'), String(process.pid));

async function runFile(req, n) {
  const path = resolve(req.cwd, req.file);
  delete cjs[path];
  const label = 'fleet-session-file-' + nonce + '-' + n;
  const end = 'fleet-session-end-' + nonce + '-' + n;
  const events = [];
  const finished = new Promise((done) => (current = { label, end, events, done }));
  describe(label, async () => {
    await import(pathToFileURL(path).href + '?fleet-session=' + n);
  });
  test(end, () => undefined);
  await finished;
  current = undefined;
  const failure = events.find((e) => e.data.name === label && e.data.nesting === 0 && e.type === 'test:fail');
  if (req.junit) {
    async function* own() {
      for (const e of events) if (e.data.nesting > 0) yield { ...e, data: { ...e.data, nesting: e.data.nesting - 1 } };
    }
    let xml = '';
    for await (const s of junit(own())) xml += s;
    writeFileSync(req.junit, xml);
  }
  if (!failure) return 0;
  // The file's tests' failures are in its report; what failed the file itself (its import, a hook) is printed,
  // as a cold run prints it.
  const error = failure.data.details && failure.data.details.error;
  if (error && error.failureType !== 'subtestsFailed') writeSync(2, String((error.cause && error.cause.stack) || error.stack || error) + '\n');
  return 1;
}

let n = 0;
send({ ready: process.version });
for await (const line of createInterface({ input: channel })) {
  const req = JSON.parse(line);
  n++;
  let code = 3;
  let broken = false;
  let moved = false;
  let started = false;
  const before = new Set(Object.keys(cjs));
  try {
    cap = req.cap;
    keep = req.keep;
    dropped = 0;
    ftruncateSync(1, 0);
    process.chdir(req.cwd);
    for (const k of Object.keys(process.env)) delete process.env[k];
    Object.assign(process.env, req.env);
    if (req.cgroup) {
      move(req.cgroup);
      moved = true;
    }
    send({ started: process.pid });
    started = true;
    code = await runFile(req, n);
  } catch (e) {
    broken = true;
    if (started) writeSync(2, String((e && e.stack) || e) + '\n');
    else send({ failed: 'cannot set up the file in the node test session: ' + ((e && e.message) || e) });
  } finally {
    try {
      if (moved) move(home);
    } catch {
      broken = true;
    }
  }
  const root = resolve(req.cwd) + sep;
  for (const k of Object.keys(cjs)) if (!before.has(k) && k.startsWith(root)) delete cjs[k];
  process.exitCode = undefined;
  const retire = n >= plan.files || process.memoryUsage.rss() > RETIRE_RSS;
  send({ exit: code, dropped, ...(retire && { retire: true }) }, broken ? () => process.exit(3) : undefined);
}
process.exit(0);
`;

/** A reporter that hands every event of the session's test runner to the server (above) and prints nothing. */
export const NODE_SESSION_REPORTER = `data:text/javascript,${encodeURIComponent(
  "export default async function* fleetSession(source) { for await (const e of source) globalThis[Symbol.for('fleet.node-session')]?.(e); }",
)}`;

/** How a `node` test command maps onto a session server. */
export interface NodeTestPlan {
  /** The `node` that runs the files: servers are kept per program, folder and options. */
  node: string;
  /** The command's options, without the file, `--test` and the JUnit reporter (the server writes the report). */
  flags: string[];
}

/** Options that make `node` do something else than run a file's tests in order (watching, evaluating, sharding). */
const NOT_IN_SESSION = /^(?:--watch|--watch-path|--eval|-e|--print|-p|--interactive|-i|--check|-c|--input-type|--test-shard)(?:=|$)/;
/** Options whose value may come as the next argument. */
const TAKES_VALUE = new Set([
  '--import',
  '--require',
  '-r',
  '--loader',
  '--experimental-loader',
  '--conditions',
  '-C',
  '--test-name-pattern',
  '--test-skip-pattern',
  '--env-file',
  '--title',
]);

/**
 * The plan for `argv` when it runs one test file with Node in a way the session server reproduces:
 * `node [options] <file>`, the file last, its options free of the ones above but for `--test` and one JUnit
 * reporter writing to `junit` (`--test-reporter=junit --test-reporter-destination=<junit>`); else undefined
 * (run it cold).
 */
export function nodeTestPlan(argv: readonly string[], env: NodeJS.ProcessEnv, cwd: string, file: string, junit?: string): NodeTestPlan | undefined {
  const [first, ...rest] = argv;
  if (first === undefined || !/^node(?:js)?(?:\d+)?$/.test(basename(first)) || rest.at(-1) !== file) return undefined;
  const options = rest.slice(0, -1);
  if (options.includes(file)) return undefined;
  const flags: string[] = [];
  let reporter = false;
  let destination = false;
  for (let i = 0; i < options.length; i++) {
    const a = options[i];
    const value = (name: string) => (a === name ? options[++i] : a.startsWith(`${name}=`) ? a.slice(name.length + 1) : undefined);
    const r = value('--test-reporter');
    if (r !== undefined) {
      if (r !== 'junit' || reporter) return undefined;
      reporter = true;
      continue;
    }
    const d = value('--test-reporter-destination');
    if (d !== undefined) {
      if (junit === undefined || d !== junit || destination) return undefined;
      destination = true;
      continue;
    }
    if (a === '--test') continue;
    if (NOT_IN_SESSION.test(a) || !a.startsWith('-')) return undefined;
    flags.push(a);
    if (TAKES_VALUE.has(a) && i + 1 < options.length) flags.push(options[++i]);
  }
  // The JUnit report asked for is the one the command writes (and is named nowhere else), or none is asked for and none written.
  if (reporter !== destination || reporter !== (junit !== undefined) || (junit !== undefined && flags.some((a) => a.includes(junit))))
    return undefined;
  const node = resolveProgram(first, env, cwd);
  return node === undefined ? undefined : { node, flags };
}
