/** Injection token of the worker's `WorkerSettings` (loaded and validated once, in `main`). */
export const WORKER_SETTINGS = Symbol('WORKER_SETTINGS');
