// Running one test command as an attempt: argv (never a shell), its own process group, marked with a cookie,
// its whole tree stopped on abort or when it exits. Shared by the worker and the CLI's CI-node slots.
export * from './process-runner.js';
export * from './process-tree.js';
export * from './tail-buffer.js';
export * from './junit-report.js';
export * from './warm-python.js';
export * from './warm-node-session.js';
export * from './launcher.js';
export * from './launcher-placement.js';
export * from './sessions-ahead.js';
