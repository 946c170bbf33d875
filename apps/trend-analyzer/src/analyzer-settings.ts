import { hostname } from 'node:os';
import {
  type AnalyzerConfig,
  type CommonSettings,
  type Env,
  envInt,
  envString,
  loadAnalyzerConfig,
  loadCommonSettings,
  loadSecuritySettings,
  parseEnv,
  type SecuritySettings,
} from '@fleet/config';

/** Injection token of the trend analyzer's `AnalyzerSettings` (loaded once, in `main`). */
export const ANALYZER_SETTINGS = Symbol('ANALYZER_SETTINGS');

export interface AnalyzerSettings extends CommonSettings {
  port: number;
  security: SecuritySettings;
  /** Consumer name in the timings stream's consumer group. */
  analyzerId: string;
  /** Readiness fails while more timing events than this wait unread by the analyzers' group. */
  readyMaxLag: number;
  config: AnalyzerConfig;
  warnings: string[];
}

export function loadAnalyzerSettings(env: Env): AnalyzerSettings {
  const common = loadCommonSettings(env);
  const e = parseEnv(
    {
      TREND_ANALYZER_PORT: envInt(0, 65535, 8082),
      TREND_ANALYZER_ID: envString(''),
      TREND_ANALYZER_READY_MAX_LAG: envInt(0, 1_000_000_000, 100_000),
    },
    env,
  );
  const config = loadAnalyzerConfig(common.configDir);
  return {
    ...common,
    port: e.TREND_ANALYZER_PORT,
    security: loadSecuritySettings(env, common.configDir, 'TREND_ANALYZER'),
    analyzerId:
      e.TREND_ANALYZER_ID ||
      `ta-${hostname()
        .replace(/[^A-Za-z0-9_-]/g, '-')
        .slice(0, 40)}-${process.pid}`,
    readyMaxLag: e.TREND_ANALYZER_READY_MAX_LAG,
    config: config.value,
    warnings: config.warnings,
  };
}
