import { spawnSync } from 'node:child_process';

/** A Python with pytest: the one on PATH, else Debian's; throws with the apt line when there is none. */
export function pythonWithPytest(): string {
  for (const python of ['python3', '/usr/bin/python3']) if (spawnSync(python, ['-m', 'pytest', '--version']).status === 0) return python;
  throw new Error("no python3 with pytest: install Debian's python3-pytest (apt-get install -y python3-pytest)");
}
