/** Injection token of the trend analyzer's `AnalyzerSettings` (loaded once, in `main`). */
export const ANALYZER_SETTINGS = Symbol('ANALYZER_SETTINGS');
