/** Jest in ESM mode (NestJS 12 is ESM-only); run through `npm test`, which builds and provides a Redis. */
const common = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.json' }] },
  moduleNameMapper: {
    '^@fleet/([a-z-]+)$': '<rootDir>/libs/$1/src/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
};

export default {
  // A worker asked to end reaches its exit at once (nothing left open: measured with a probe of its handles), but
  // tearing down its heap (about 1 GB by the end of a full run) took longer than Jest's 500 ms on a slow VM, which
  // Jest reported as a worker that "failed to exit gracefully". A worker held open by a leak is still killed, later.
  workerGracefulExitTimeout: 5000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/libs/*/src/**/*.spec.ts', '<rootDir>/apps/*/src/**/*.spec.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.integration-spec.ts'],
      setupFilesAfterEnv: ['<rootDir>/libs/testing/src/e2e-setup.ts'],
      slowTestThreshold: 120,
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/apps/*/test/**/*.e2e-spec.ts'],
      setupFilesAfterEnv: ['<rootDir>/libs/testing/src/e2e-setup.ts'],
      slowTestThreshold: 30,
    },
    {
      ...common,
      displayName: 'security',
      testMatch: ['<rootDir>/test/security/**/*.security-spec.ts'],
      setupFilesAfterEnv: ['<rootDir>/libs/testing/src/e2e-setup.ts'],
      slowTestThreshold: 30,
    },
    {
      ...common,
      displayName: 'faults',
      testMatch: ['<rootDir>/test/faults/**/*.fault-spec.ts'],
      setupFilesAfterEnv: ['<rootDir>/libs/testing/src/e2e-setup.ts'],
      slowTestThreshold: 60,
    },
    {
      ...common,
      displayName: 'hosts',
      testMatch: ['<rootDir>/test/hosts/**/*.hosts-spec.ts'],
      setupFilesAfterEnv: ['<rootDir>/libs/testing/src/e2e-setup.ts'],
      slowTestThreshold: 60,
    },
  ],
};
