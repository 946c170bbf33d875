// Preloaded into an app by a test (`node --import <this file>`): appends every file the app loads from
// node_modules, by `import` (a resolve hook, on the loader's thread) or by `require`, to
// $FLEET_LOADS_DIR/<pid>, one path per line. The bundled apps should load almost nothing from there.
import { appendFileSync } from 'node:fs';
import Module, { register } from 'node:module';
import { join } from 'node:path';

const log = join(process.env.FLEET_LOADS_DIR ?? '.', String(process.pid));
const note = (path) => {
  if (path.includes('/node_modules/')) appendFileSync(log, `${path}\n`);
};

const load = Module._load;
Module._load = function (request, parent, isMain) {
  try {
    note(Module._resolveFilename(request, parent, isMain));
  } catch {
    // Unresolvable (a built-in, or an optional peer that is absent), or the test's folder is gone: the real load
    // decides what happens.
  }
  return load.apply(this, arguments);
};

const hooks = `
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  try {
    if (r.url.startsWith('file:') && r.url.includes('/node_modules/')) appendFileSync(${JSON.stringify(log)}, new URL(r.url).pathname + '\\n');
  } catch {
    // The test's folder is gone (it ended): the probe never stops an import.
  }
  return r;
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`, import.meta.url);
