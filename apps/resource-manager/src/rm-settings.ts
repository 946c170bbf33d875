/** Injection token of the resource manager's `ResourceManagerSettings` (loaded once, in `main`). */
export const RM_SETTINGS = Symbol('RM_SETTINGS');
