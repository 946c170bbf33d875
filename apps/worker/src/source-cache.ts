import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, lstat, mkdir, readdir, readFile, rename, rm, unlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Source } from '@fleet/contracts';
import {
  checkoutName,
  chooseEvictions,
  fetchCommit,
  gitMessage,
  hasCommit,
  initMirror,
  LOCK_STALE_MS,
  repoKey,
  runGit,
  withFileLock,
} from '@fleet/sources';
import { processExists } from '@fleet/exec';
import { type WorkerSettings, WORKER_SETTINGS } from './worker-settings.js';

/** A task's hold on one checkout: eviction never removes a checkout while a lease on it lives. */
export interface SourceLease {
  dir: string;
  name: string;
  /** This attempt fetched the commit (false: the host's mirror had it, or another worker fetched it). */
  fetched: boolean;
  release(): Promise<void>;
}

/** What the setup command of one commit did on this host, recorded once and read by every later file. */
export interface SetupRecord {
  ok: boolean;
  argv: readonly string[];
  exit_code: number | null;
  reason: string;
  output_tail: string;
  duration_ms: number;
  host: string;
  at: number;
}

interface Meta {
  repo: string;
  commit: string;
  bytes: number;
  created_at: number;
}

/** Bytes a tree takes on disk (allocated blocks), symlinks not followed. */
async function diskBytes(path: string): Promise<number> {
  const st = await lstat(path);
  if (!st.isDirectory()) return st.blocks * 512;
  let total = st.blocks * 512;
  for (const entry of await readdir(path)) total += await diskBytes(join(path, entry));
  return total;
}

/**
 * The host's source cache, shared by every worker process on the host through the file system:
 * - `mirrors/<repo>.git`: one bare mirror per repository, fetched only when a commit is missing;
 * - `checkouts/<repo>@<sha>`: one tree per commit, built in `tmp/` and renamed into place, so a fetch or
 *   checkout killed midway never leaves a half-written tree in use;
 * - `leases/<checkout>/<pid>-…`: the tasks using a checkout (a dead process's lease counts for nothing);
 * - `meta/`, `setup/`: each checkout's size and last use, and its setup's outcome;
 * - `locks/`: one lock per repository (two workers that need the same commit fetch it once), one per
 *   checkout's setup, and one for the cache's accounting;
 * - `events.log`: one JSON line per fetch, build, setup and eviction (what an operator reads first).
 */
@Injectable()
export class SourceCache {
  private readonly logger = new Logger(SourceCache.name);
  private readonly root: string;
  private opened: Promise<void> | undefined;

  constructor(@Inject(WORKER_SETTINGS) private readonly settings: WorkerSettings) {
    this.root = settings.sourceDir;
  }

  private path(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  /** A fresh path under `tmp/` named after this process, so a sweep can tell a dead builder's leftovers. */
  private aside(kind: string): string {
    return this.path('tmp', `${process.pid}-${randomBytes(6).toString('hex')}-${kind}`);
  }

  private async event(fields: Record<string, unknown>): Promise<void> {
    await appendFile(this.path('events.log'), `${JSON.stringify({ at: Date.now(), host: hostname(), pid: process.pid, ...fields })}\n`);
  }

  /** Holds `name`'s lock (shared by every worker on the host) while `fn` runs. */
  private locked<T>(name: string, waitMs: number, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    const onCompromised = (err: Error) => this.logger.warn(`source cache lock ${name} was taken over: ${err.message}`);
    return withFileLock(this.path('locks', name), { waitMs, onCompromised, ...(signal && { signal }) }, fn);
  }

  /** Creates the cache's folders and removes what builders that died left in `tmp/`. */
  async open(): Promise<void> {
    for (const d of ['mirrors', 'checkouts', 'meta', 'leases', 'setup', 'locks', 'tmp']) await mkdir(this.path(d), { recursive: true });
    for (const entry of await readdir(this.path('tmp'))) {
      const pid = Number(entry.split('-')[0]);
      if (!Number.isInteger(pid) || !processExists(pid)) await rm(this.path('tmp', entry), { recursive: true, force: true });
    }
  }

  /** A lease on the commit's checkout (the one for this setup command), fetching and building it first when this host has none. */
  async acquire(source: Source, signal: AbortSignal, setup?: readonly string[]): Promise<SourceLease> {
    await (this.opened ??= this.open());
    const name = checkoutName(source.repo, source.commit, setup);
    const ready = await this.lease(name, false);
    if (ready) return ready;
    const built = await this.locked(`${repoKey(source.repo)}`, this.settings.sourceFetchTimeoutMs + 2 * LOCK_STALE_MS + 60_000, signal, async () => {
      const again = await this.lease(name, false);
      if (again) return again;
      const mirror = this.path('mirrors', `${repoKey(source.repo)}.git`);
      if (!existsSync(mirror)) await initMirror(mirror, this.aside('mirror'));
      let fetched = false;
      if (!(await hasCommit(mirror, source.commit))) {
        const started = Date.now();
        await fetchCommit(mirror, source.repo, source.commit, this.settings.sourceFetchTimeoutMs, signal);
        fetched = true;
        await this.event({ event: 'fetch', repo: source.repo, commit: source.commit, ms: Date.now() - started });
      }
      await this.build(mirror, source, name, signal);
      const lease = await this.lease(name, fetched);
      if (!lease) throw new Error(`checkout ${name} vanished right after it was built`);
      return lease;
    });
    await this.evict();
    return built;
  }

  /** Clones the commit from the mirror (sharing its objects) into `tmp/`, then renames it into place. */
  private async build(mirror: string, source: Source, name: string, signal: AbortSignal): Promise<void> {
    const started = Date.now();
    const aside = this.aside('checkout');
    const step = async (args: string[]) => {
      const r = await runGit(args, { timeoutMs: this.settings.sourceFetchTimeoutMs, signal });
      if (r.code !== 0) throw new Error(`checking out commit ${source.commit} of ${source.repo} failed: ${gitMessage(r.stderr)}`);
    };
    try {
      await step(['clone', '--quiet', '--shared', '--no-checkout', mirror, aside]);
      await step(['-C', aside, 'config', 'gc.auto', '0']);
      await step(['-C', aside, '-c', 'advice.detachedHead=false', 'checkout', '--quiet', '--detach', source.commit]);
      const meta: Meta = { repo: source.repo, commit: source.commit, bytes: await diskBytes(aside), created_at: Date.now() };
      await rename(aside, this.path('checkouts', name));
      await writeFile(this.path('meta', `${name}.json`), JSON.stringify(meta));
      await this.event({ event: 'checkout', repo: source.repo, commit: source.commit, bytes: meta.bytes, ms: Date.now() - started });
    } finally {
      await rm(aside, { recursive: true, force: true });
    }
  }

  /** Under the accounting lock: a lease on `name` when its checkout is there, else undefined. */
  private lease(name: string, fetched: boolean): Promise<SourceLease | undefined> {
    return this.locked('cache', 60_000, undefined, async () => {
      const dir = this.path('checkouts', name);
      if (!existsSync(dir)) return undefined;
      await mkdir(this.path('leases', name), { recursive: true });
      const file = this.path('leases', name, `${process.pid}-${randomBytes(6).toString('hex')}`);
      await writeFile(file, '');
      await this.touch(name);
      return {
        dir,
        name,
        fetched,
        release: async () => {
          await unlink(file).catch(() => undefined);
          await this.touch(name);
        },
      };
    });
  }

  private async touch(name: string): Promise<void> {
    const now = new Date();
    await utimes(this.path('meta', `${name}.json`), now, now).catch(() => undefined);
  }

  /** Whether a live process holds a lease on `name` (leases of dead processes are removed on the way). */
  private async inUse(name: string): Promise<boolean> {
    let leases: string[];
    try {
      leases = await readdir(this.path('leases', name));
    } catch {
      return false;
    }
    let live = false;
    for (const l of leases) {
      if (processExists(Number(l.split('-')[0]))) live = true;
      else await unlink(this.path('leases', name, l)).catch(() => undefined);
    }
    return live;
  }

  /** Removes the least recently used checkouts no task holds until the cache fits its budget. */
  async evict(): Promise<string[]> {
    const trash: string[] = [];
    const evicted = await this.locked('cache', 60_000, undefined, async () => {
      const checkouts = [];
      for (const f of await readdir(this.path('meta'))) {
        if (!f.endsWith('.json')) continue;
        const name = f.slice(0, -'.json'.length);
        try {
          const [raw, st] = await Promise.all([readFile(this.path('meta', f), 'utf8'), lstat(this.path('meta', f))]);
          checkouts.push({ name, bytes: (JSON.parse(raw) as Meta).bytes, lastUsed: st.mtimeMs, inUse: await this.inUse(name) });
        } catch {
          // a meta file being written: skip it this time
        }
      }
      const chosen = chooseEvictions(checkouts, this.settings.sourceCacheBytes);
      for (const name of chosen) {
        const to = this.aside('evicted');
        await rename(this.path('checkouts', name), to).catch(() => undefined);
        trash.push(to);
        await rm(this.path('meta', `${name}.json`), { force: true });
        await rm(this.path('setup', `${name}.json`), { force: true });
        await rm(this.path('leases', name), { recursive: true, force: true });
      }
      return chosen;
    });
    for (const t of trash) await rm(t, { recursive: true, force: true });
    for (const name of evicted) await this.event({ event: 'evict', checkout: name });
    return evicted;
  }

  /**
   * The commit's setup on this host: the recorded outcome when there is one, else `run` runs it (under the
   * checkout's setup lock, so it runs once however many workers start the commit at once) and its outcome is
   * recorded. An interrupted setup (its task's lock lost, the worker killed) records nothing and runs again.
   */
  async setup(lease: SourceLease, timeoutMs: number, signal: AbortSignal, run: () => Promise<SetupRecord | undefined>): Promise<SetupRecord> {
    const file = this.path('setup', `${lease.name}.json`);
    const recorded = async () => {
      try {
        return JSON.parse(await readFile(file, 'utf8')) as SetupRecord;
      } catch {
        return undefined;
      }
    };
    const before = await recorded();
    if (before) return before;
    const record = await this.locked(`${lease.name}.setup`, timeoutMs + 2 * LOCK_STALE_MS + 60_000, signal, async () => {
      const again = await recorded();
      if (again) return again;
      const done = await run();
      if (!done) throw signal.reason ?? new Error('the setup was interrupted');
      await writeFile(file, JSON.stringify(done));
      await this.event({ event: 'setup', checkout: lease.name, ok: done.ok, exit_code: done.exit_code, ms: done.duration_ms });
      // What the setup wrote (node_modules, a virtualenv) counts against the budget from now on.
      const meta = JSON.parse(await readFile(this.path('meta', `${lease.name}.json`), 'utf8')) as Meta;
      await writeFile(this.path('meta', `${lease.name}.json`), JSON.stringify({ ...meta, bytes: await diskBytes(lease.dir) }));
      return done;
    });
    await this.evict();
    return record;
  }
}
