import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** A temporary CONFIG_DIR holding the given JSON config files and any other files (e.g. tests to run). */
export interface ConfigDir {
  path: string;
  write(relative: string, content: string | object): string;
  remove(): void;
}

export function makeConfigDir(files: Record<string, string | object> = {}): ConfigDir {
  const path = mkdtempSync(join(tmpdir(), 'fleet-config-'));
  const dir: ConfigDir = {
    path,
    write(relative, content) {
      const file = join(path, relative);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
      return file;
    },
    remove() {
      rmSync(path, { recursive: true, force: true });
    },
  };
  for (const [name, content] of Object.entries(files)) dir.write(name, content);
  return dir;
}

/** A worker template for tests: a LOCAL CPU pool running `.mjs` tests with node and a node benchmark script. */
export function cpuTemplate(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    provider: 'LOCAL',
    resources: { cpu: 2, memory_gb: 4 },
    capabilities: ['CPU'],
    concurrency: 4,
    runners: {
      test: { '.mjs': ['node', '--test', '{test_file}'] },
      benchmark: ['node', 'bench.mjs', '--model', '{model}', '--iterations', '{iterations}'],
    },
    ...overrides,
  };
}

/** A `node --test` runner that prints its spec report and writes JUnit XML where the attempt says (`{junit_file}`). */
export const NODE_JUNIT = [
  'node',
  '--test',
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  '--test-reporter=junit',
  '--test-reporter-destination={junit_file}',
  '{test_file}',
];
