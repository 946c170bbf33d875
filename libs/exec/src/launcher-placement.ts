import { closeSync, fstatSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CgroupPlacement, PlacementTimes } from './launcher.js';

/**
 * A host's timed placement (see launcher-server.ts), kept for the rest of its boot: the first launcher after a boot
 * times both ways (ten starts each of /bin/true and Node, 0.4-1.1 s), and every later one on the host starts with that choice.
 */
export interface KeptPlacement {
  /** `/proc/sys/kernel/random/boot_id` when it was timed. */
  boot: string;
  placement: CgroupPlacement;
  probe: PlacementTimes;
}

/** Where this user's kept placement is (one per user; a file there that another user owns is never read). */
export const keptPlacementFile = (): string => join(tmpdir(), `fleet-launcher-placement-${process.getuid?.() ?? 0}.json`);

/** This boot's id, or undefined where Linux does not give one (then nothing is kept). */
export function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** The placement kept in `file` for `boot`; undefined when there is none, it is another boot's, or the file is not one. */
export function keptPlacement(boot: string, file = keptPlacementFile()): KeptPlacement | undefined {
  let kept: unknown;
  try {
    // Owner checked and content read through one open file: no swap between the check and the read.
    const fd = openSync(file, 'r');
    try {
      if (fstatSync(fd).uid !== (process.getuid?.() ?? 0)) return undefined;
      kept = JSON.parse(readFileSync(fd, 'utf8'));
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
  if (typeof kept !== 'object' || kept === null) return undefined;
  const { boot: at, placement, probe } = kept as Record<string, unknown>;
  if (at !== boot || (placement !== 'clone3' && placement !== 'move')) return undefined;
  if (typeof probe !== 'object' || probe === null) return undefined;
  const { clone3, move } = probe as Record<string, unknown>;
  return isTime(clone3) && isTime(move) ? { boot, placement, probe: { clone3, move } } : undefined;
}

/** Keeps `kept` in `file` (written whole, then renamed into place); a failure to write only means timing again. */
export function keepPlacement(kept: KeptPlacement, file = keptPlacementFile()): void {
  const partial = `${file}.${process.pid}`;
  try {
    writeFileSync(partial, JSON.stringify(kept), { mode: 0o600 });
    renameSync(partial, file);
  } catch {
    // a read-only or full /tmp: the next launcher times the placements again
  }
}
