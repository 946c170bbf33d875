import type { FieldError } from '@fleet/contracts';

/**
 * A configuration problem found at start-up. The message names the source (a file or "environment"),
 * each field and the reason, so `main` can print it and exit without a stack trace.
 */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: readonly FieldError[],
  ) {
    super(`${source}: ${problems.map((p) => `${p.field}: ${p.reason}`).join('; ')}`);
    this.name = 'ConfigError';
  }

  /** One problem per line, for a person reading a failed start-up. */
  describe(): string {
    return [`${this.source}:`, ...this.problems.map((p) => `  - ${p.field}: ${p.reason}`)].join('\n');
  }
}
