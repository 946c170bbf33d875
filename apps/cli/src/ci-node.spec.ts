import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTests } from './ci-node.js';

describe('findTests: the files a CI node finds in its checkout', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-find-'));
    for (const f of [
      'tests/a.test.mjs',
      'tests/sub/b.test.mjs',
      'tests/node_modules/dep/c.test.mjs',
      'tests/.hidden/d.test.mjs',
      'other/e.test.mjs',
    ]) {
      mkdirSync(join(dir, f, '..'), { recursive: true });
      writeFileSync(join(dir, f), '');
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('expands folders and globs, skipping node_modules and hidden folders, each file once, sorted', async () => {
    expect(await findTests(['tests/', 'tests/**/*.mjs', './other/e.test.mjs'], dir)).toEqual([
      'other/e.test.mjs',
      'tests/a.test.mjs',
      'tests/sub/b.test.mjs',
    ]);
  });

  it('names a pattern that finds nothing, or a missing file', async () => {
    await expect(findTests(['nothing/*.mjs'], dir)).rejects.toThrow(/nothing\/\*\.mjs: matches no file/);
    await expect(findTests(['tests/missing.test.mjs'], dir)).rejects.toThrow(/no such file or folder/);
  });
});
