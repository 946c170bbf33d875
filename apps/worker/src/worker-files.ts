import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The compiled worker's folder (dist/apps/worker/src). This module sits at its top, and so does the bundle
 * (scripts/bundle-apps.mjs), so the same URL is right in both: files other processes or threads load are found
 * from here rather than from the module that asks, which the bundle moves.
 */
const SRC = new URL('.', import.meta.url);

/** A file of the compiled worker, by its path below dist/apps/worker/src. */
export const workerFile = (rel: string): URL => new URL(rel, SRC);

/** The guard's entry: its bundle beside the worker's when built, else the compiled module. */
export function guardEntry(): string {
  const bundle = workerFile('process-guard.bundle.mjs');
  return fileURLToPath(existsSync(bundle) ? bundle : workerFile('process-guard.js'));
}
