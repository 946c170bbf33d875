import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HttpStatus, Injectable, Inject, Logger } from '@nestjs/common';
import { FieldErrorsException, unprocessable } from '@fleet/app';
import { extensionOf, FULL_SHA, type Source, type Task, type WorkerTemplate } from '@fleet/contracts';
import {
  allowListProblem,
  fetchCommit,
  GitSourceError,
  hasCommit,
  initMirror,
  listTree,
  matchTests,
  repoKey,
  resolveRef,
  withFileLock,
} from '@fleet/sources';
import { randomBytes } from 'node:crypto';
import { type CoordinatorSettings, COORDINATOR_SETTINGS } from './coordinator-settings.js';

/** A source as a run records it: the sha tests run at, and the name it was asked by, if any. */
export interface ResolvedSource {
  repo: string;
  commit: string;
  ref?: string;
}

/**
 * Turns a requested source into one a worker can run: the repository is on the pool's allow-list, a branch
 * or tag becomes its sha once (every file of the run then tests the same commit, whatever is pushed later),
 * and the commit exists. The coordinator keeps its own mirror per repository for that, and lists the commit's
 * tree from it to resolve the run's test patterns. Git runs with the coordinator host's own credentials.
 */
@Injectable()
export class SourceResolver {
  private readonly logger = new Logger(SourceResolver.name);
  /** Commits known to be in the mirror (a commit never changes): no git call for them again. */
  private readonly present = new Set<string>();
  /** The file lists of recently used commits' trees (a commit's tree never changes), newest last. */
  private readonly trees = new Map<string, readonly string[]>();
  /** Resolutions in flight, shared by identical requests (a batch of tasks naming one branch asks once). */
  private readonly inflight = new Map<string, Promise<ResolvedSource>>();

  constructor(@Inject(COORDINATOR_SETTINGS) private readonly settings: CoordinatorSettings) {}

  private fail(field: string, err: unknown): never {
    if (!(err instanceof GitSourceError)) throw err;
    const unknown = err.problem === 'unknown_commit' || err.problem === 'unknown_ref';
    // Unknown names are the request's fault (422); a server that cannot be reached is the gateway's (502).
    throw new FieldErrorsException(unknown ? HttpStatus.UNPROCESSABLE_ENTITY : HttpStatus.BAD_GATEWAY, [
      { field: unknown ? `${field}.commit` : `${field}.repo`, reason: err.message },
    ]);
  }

  /** The source with its commit as a sha, fetched into the coordinator's mirror; 422 or 502 naming the field otherwise. */
  async resolve(source: Source, template: WorkerTemplate, field: string): Promise<ResolvedSource> {
    const problem = allowListProblem(source.repo, template.pool, template.sources);
    if (problem) throw unprocessable([{ field: `${field}.repo`, reason: problem }]);
    const key = `${source.repo}\0${source.commit}\0${field}`;
    const pending = this.inflight.get(key) ?? this.resolveNow(source, field).finally(() => this.inflight.delete(key));
    this.inflight.set(key, pending);
    return pending;
  }

  private async resolveNow(source: Source, field: string): Promise<ResolvedSource> {
    const timeoutMs = this.settings.sourceFetchTimeoutMs;
    let commit = source.commit;
    if (!FULL_SHA.test(commit)) {
      try {
        commit = await resolveRef(source.repo, source.commit, timeoutMs);
      } catch (err) {
        this.fail(field, err);
      }
    }
    const resolved: ResolvedSource = { repo: source.repo, commit, ...(commit !== source.commit && { ref: source.commit }) };
    const mirror = this.mirror(source.repo);
    if (this.present.has(`${source.repo}\0${commit}`)) return resolved;
    try {
      await withFileLock(
        join(this.settings.sourceDir, 'locks', repoKey(source.repo)),
        { waitMs: timeoutMs * 2, onCompromised: (e) => this.logger.warn(`mirror lock taken over: ${e.message}`) },
        async () => {
          if (!existsSync(mirror)) await initMirror(mirror, join(this.settings.sourceDir, 'tmp', `${process.pid}-${randomBytes(6).toString('hex')}`));
          if (!(await hasCommit(mirror, commit))) await fetchCommit(mirror, source.repo, commit, timeoutMs);
        },
      );
      if (this.present.size >= 100_000) this.present.clear();
      this.present.add(`${source.repo}\0${commit}`);
    } catch (err) {
      this.fail(field, err);
    }
    return resolved;
  }

  private mirror(repo: string): string {
    return join(this.settings.sourceDir, 'mirrors', `${repoKey(repo)}.git`);
  }

  /** A run's test entries resolved against the commit's tree (files the pool has a runner for). */
  async resolveTests(entries: readonly string[], source: ResolvedSource, template: WorkerTemplate): Promise<string[]> {
    const key = `${source.repo}\0${source.commit}`;
    const files = this.trees.get(key) ?? (await listTree(this.mirror(source.repo), source.commit));
    this.trees.delete(key);
    this.trees.set(key, files);
    if (this.trees.size > 32) this.trees.delete(this.trees.keys().next().value as string);
    const runnable = (f: string) => template.runners.test[extensionOf(f)] !== undefined;
    const { found, errors } = matchTests(entries, files, runnable, `commit ${source.commit} of ${source.repo}`);
    if (errors.length > 0) throw unprocessable(errors);
    return found;
  }

  /** A single test task with a source, its commit resolved to a sha (other tasks as they are). */
  async resolveTask(task: Task, template: WorkerTemplate, field: string): Promise<Task> {
    if (task.type !== 'test' || !task.config.source) return task;
    const { repo, commit } = await this.resolve(task.config.source, template, field);
    return { ...task, config: { ...task.config, source: { repo, commit } } };
  }
}
