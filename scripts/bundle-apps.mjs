// `node scripts/bundle-apps.mjs` (run by `npm run build` after `nest build`): each app as one file beside its
// compiled modules (dist/apps/<app>/src/main.bundle.mjs, and the worker's guard as process-guard.bundle.mjs). The
// resource manager starts workers from the bundle, and the start scripts and tests start every app from its bundle:
// Node then reads and links one file instead of about 1,500 modules. A worker alone is ready in 0.59 s instead of
// 0.95 s (4.1 → 2.2 s for six at once on two cores); the coordinator and the trend analyzer answer /health/ready
// about 0.3-0.5 s sooner. It bundles the compiled JavaScript, not the TypeScript, because Nest's injection needs the
// decorator metadata tsc emits.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { bundleCli } from './pack-cli.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Each app's entries, by their compiled module's name below dist/apps/<app>/src. */
export const BUNDLED_APPS = {
  worker: ['main', 'process-guard'],
  coordinator: ['main'],
  'resource-manager': ['main'],
  'trend-analyzer': ['main'],
  dashboard: ['main'],
};

export async function bundleApps() {
  await Promise.all([
    ...Object.entries(BUNDLED_APPS).map(([app, names]) => bundleApp(app, names)),
    // The CLI as `npm run pack:cli` bundles it (Nest and the queue libraries shaken out): it starts in 0.2 s
    // instead of 1.2 s, which a CI job pays on every `fleet run`.
    bundleCli(join(root, 'dist', 'apps', 'cli', 'src', 'main.bundle.mjs')),
  ]);
}

async function bundleApp(app, names) {
  const src = join(root, 'dist', 'apps', app, 'src');
  const entries = names.map((name) => join(src, `${name}.js`));
  for (const entry of entries) if (!existsSync(entry)) throw new Error(`${entry} is missing: run nest build first`);
  for (const old of readdirSync(src)) if (old.endsWith('.bundle.mjs') || old.startsWith('bundle-chunk-')) rmSync(join(src, old));
  await build({
    entryPoints: entries,
    outdir: src,
    entryNames: '[name].bundle',
    outExtension: { '.js': '.mjs' },
    // What only some starts load (the HTTP surface of a worker run on its own, WORKER_PORT) goes in chunks of its
    // own beside the bundle, sharing its modules: one copy of Nest and of the libs whichever way the app starts.
    splitting: true,
    chunkNames: 'bundle-chunk-[hash]',
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // Bundled CommonJS modules call require(): give them one. Nest's decorators need reflect-metadata before any
    // module of any chunk runs (the order of chunks is not the order of the sources' imports): first in each.
    banner: {
      js: "import 'reflect-metadata';\nimport { createRequire as __fleetRequire } from 'node:module';\nconst require = __fleetRequire(import.meta.url);",
    },
    // Class names are what Nest's logs and errors name providers by.
    keepNames: true,
    // NO_MINIFY=1: readable bundles, so a CPU profile names functions where they are defined (docs/benchmark.md).
    minify: !process.env.NO_MINIFY,
    legalComments: 'none',
    // Optional peers Nest and its modules load only when asked (never by these apps): left out, not resolved.
    external: [
      'reflect-metadata',
      '@nestjs/microservices',
      '@nestjs/microservices/*',
      '@nestjs/websockets',
      '@nestjs/websockets/*',
      'class-validator',
      'class-transformer',
      'class-transformer/*',
      // The Fastify adapter's optional peer for uploads: the coordinator takes none.
      '@fastify/multipart',
    ],
    logLevel: 'error',
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await bundleApps();
