import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { ConfigError } from './config-error.js';

/** Reads a JSON config file; a missing or malformed file is a ConfigError naming it. */
export function readJsonFile(path: string): unknown {
  const name = basename(path);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(name, [
      { field: '(file)', reason: code === 'ENOENT' ? `not found at ${path}` : `cannot be read (${code ?? String(err)})` },
    ]);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ConfigError(name, [{ field: '(file)', reason: `is not valid JSON: ${(err as Error).message}` }]);
  }
}
