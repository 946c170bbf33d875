import { chownSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootId, keepPlacement, keptPlacement } from './launcher-placement.js';

describe('a kept launcher placement', () => {
  const dir = mkdtempSync(join(tmpdir(), 'placement-spec-'));
  const kept = { boot: 'boot-a', placement: 'move' as const, probe: { clone3: 10.4, move: 5.1 } };

  it('is read back for the boot it was timed in, and for no other', () => {
    const file = join(dir, 'kept.json');
    keepPlacement(kept, file);
    expect(keptPlacement('boot-a', file)).toEqual(kept);
    expect(keptPlacement('boot-b', file)).toBeUndefined();
  });

  it('is not read from a file that is missing, not JSON, or not the right shape', () => {
    expect(keptPlacement('boot-a', join(dir, 'missing.json'))).toBeUndefined();
    const bad = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      return keptPlacement('boot-a', join(dir, name));
    };
    expect(bad('torn.json', '{"boot":"boot-a","placement":"mo')).toBeUndefined();
    expect(bad('null.json', 'null')).toBeUndefined();
    expect(bad('way.json', JSON.stringify({ ...kept, placement: 'fork' }))).toBeUndefined();
    expect(bad('noprobe.json', JSON.stringify({ boot: 'boot-a', placement: 'move' }))).toBeUndefined();
    expect(bad('time.json', JSON.stringify({ ...kept, probe: { clone3: '10', move: 5 } }))).toBeUndefined();
    expect(bad('negative.json', JSON.stringify({ ...kept, probe: { clone3: 10, move: -1 } }))).toBeUndefined();
  });

  it('is written whole, readable by its user only, and a failed write leaves nothing half-written', () => {
    const file = join(dir, 'whole.json');
    keepPlacement(kept, file);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(kept);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    keepPlacement(kept, join(dir, 'no-such-dir', 'kept.json'));
    expect(keptPlacement('boot-a', join(dir, 'no-such-dir', 'kept.json'))).toBeUndefined();
    // Only the files the cases wrote: no partial file left behind.
    expect(readdirSync(dir).filter((f) => !f.endsWith('.json'))).toEqual([]);
  });

  // Only root can give a file away; elsewhere this case has nothing to try.
  (process.getuid?.() === 0 ? it : it.skip)('is not read from a file another user owns, though it names this boot', () => {
    const file = join(dir, 'theirs.json');
    keepPlacement(kept, file);
    chownSync(file, 65534, 65534);
    expect(keptPlacement('boot-a', file)).toBeUndefined();
  });

  it('names this boot on Linux', () => {
    expect(bootId()).toMatch(/^[0-9a-f-]{36}$/);
  });
});
