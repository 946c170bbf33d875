// `npm run pack:cli [-- --out dir]`: the CLI as one installable file. esbuild bundles apps/cli (and the libs it imports)
// into dist/fleet-cli/fleet.mjs with no runtime dependencies; `npm pack` there makes the tarball another
// repository's CI installs (`npm install <tgz>`, then `npx fleet …`). Prints the tarball's path.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/**
 * The CLI as one file at `outfile` with no runtime dependencies (what `npm run build` puts beside the compiled CLI,
 * and what the tarball holds). Resolves with esbuild's metafile.
 */
export async function bundleCli(outfile, { quiet = true } = {}) {
  const result = await build({
    entryPoints: [join(root, 'apps', 'cli', 'src', 'main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    tsconfig: join(root, 'tsconfig.json'),
    // Bundled CommonJS modules call require(): give them one.
    banner: {
      js: "#!/usr/bin/env node\nimport { createRequire as __fleetRequire } from 'node:module';\nconst require = __fleetRequire(import.meta.url);",
    },
    legalComments: 'none',
    // Reached only through the libs' index files and shaken out (the CLI uses no Nest code); kept external so
    // esbuild need not resolve Nest's optional peers. The check below fails the build if any is still imported.
    external: ['@nestjs/*', 'class-validator', 'class-transformer', 'ioredis', 'bullmq', 'pino', 'pino-pretty', 'prom-client'],
    logLevel: quiet ? 'error' : 'warning',
    metafile: true,
  });
  const left = Object.values(result.metafile.outputs)
    .flatMap((o) => o.imports)
    .filter((i) => i.external && !i.path.startsWith('node:') && !isBuiltin(i.path))
    .map((i) => i.path);
  if (left.length > 0) throw new Error(`the bundled CLI still imports ${[...new Set(left)].join(', ')}: it would not run on its own`);
  chmodSync(outfile, 0o755);
  return result.metafile;
}

/** Bundles and packs into `dest` (default dist/); returns the tarball's path. */
export async function packCli({ quiet = false, dest = join(root, 'dist') } = {}) {
  const out = join(dest, 'fleet-cli');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const metafile = await bundleCli(join(out, 'fleet.mjs'), { quiet });
  for (const f of ['package.json', 'README.md']) copyFileSync(join(root, 'packages', 'fleet-cli', f), join(out, f));
  const name = execFileSync('npm', ['pack', '--silent', '--pack-destination', dest], { cwd: out, encoding: 'utf8' }).trim().split('\n').at(-1);
  const tarball = join(dest, name);
  if (!quiet) {
    const inputs = Object.values(metafile.outputs)
      .flatMap((o) => Object.keys(o.inputs))
      .filter((p) => p.includes('node_modules/'));
    const packages = [...new Set(inputs.map((p) => p.replace(/^.*node_modules\/((?:@[^/]+\/)?[^/]+).*$/, '$1')))].sort();
    console.log(`fleet.mjs: ${(statSync(join(out, 'fleet.mjs')).size / 1024).toFixed(0)} KiB, bundling ${packages.join(', ') || 'no package'}`);
  }
  return tarball;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--out');
  console.log(await packCli(at > 0 ? { dest: resolve(process.argv[at + 1]) } : {}));
}
