/** Injection token of the coordinator's `CoordinatorSettings` (loaded and validated once, in `main`). */
export const COORDINATOR_SETTINGS = Symbol('COORDINATOR_SETTINGS');
