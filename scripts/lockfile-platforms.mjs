#!/usr/bin/env node
// The npm registry reachable here serves only this platform's builds of packages that ship per-platform
// binaries as optional dependencies (msgpackr-extract, unrs-resolver, ...). `npm install` then writes a
// lockfile without the other platforms' entries, and `npm ci` refuses it as out of sync. This adds the
// missing entries, marked optional with the os/cpu their names state, as a full registry would have
// written them; npm skips them on other platforms without fetching. Run after `npm install`.
import { readFileSync, writeFileSync } from 'node:fs';

const OS = { darwin: 'darwin', linux: 'linux', win32: 'win32', freebsd: 'freebsd', android: 'android', openharmony: 'openharmony', wasm32: null };
const CPU = ['arm64', 'x64', 'arm', 'ia32', 'loong64', 'ppc64', 'riscv64', 's390x', 'wasm32'];

const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
const packages = lock.packages;
let added = 0;
for (const [path, meta] of Object.entries(packages)) {
  for (const [name, version] of Object.entries(meta.optionalDependencies ?? {})) {
    const key = `${path.slice(0, path.lastIndexOf('node_modules/'))}node_modules/${name}`.replace(/^\/+/, '');
    if (packages[key] || packages[`node_modules/${name}`]) continue;
    const parts = name.split('/').pop().split('-');
    const os = parts.find((p) => p in OS);
    const cpu = parts.find((p) => CPU.includes(p));
    if (!os && !cpu) continue;
    packages[`node_modules/${name}`] = { version, optional: true, ...(os && OS[os] && { os: [OS[os]] }), ...(cpu && { cpu: [cpu] }) };
    added++;
  }
}
writeFileSync('package-lock.json', `${JSON.stringify(lock, null, 2)}\n`);
console.log(`added ${added} platform entries`);
