// One CI node of a static split, for the CI-nodes bench: `node static-shard.js <slots> <start-ms> <file>…` runs
// the files in the current folder, `slots` at a time in the order given, each through the executor the fleet's
// nodes use, after waiting `start-ms` (the node's start). A process of its own, as each CI node is.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { runProcess } from '@fleet/exec';

const [slots, startMs, ...files] = process.argv.slice(2);
await sleep(Number(startMs));
const never = new AbortController().signal;
const slot = async () => {
  for (let f = files.shift(); f !== undefined; f = files.shift()) {
    await runProcess({
      argv: [`./${f}`],
      cwd: process.cwd(),
      env: process.env,
      signal: never,
      killGraceMs: 1000,
      cookie: randomBytes(16).toString('hex'),
    });
  }
};
await Promise.all(Array.from({ length: Number(slots) }, slot));
