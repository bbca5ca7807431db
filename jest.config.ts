import type { Config } from 'jest';

// One jest run covers every level; the stress suite runs only through `npm run test:stress`.
const config: Config = {
  testEnvironment: 'node',
  transform: { '^.+\\.tsx?$': 'ts-jest' },
  // client/ is an ES module package: its sources import './x.js', which are ./x.ts until built.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/test/stress/'],
  testTimeout: 60_000,
  maxWorkers: 2,
  setupFiles: ['<rootDir>/test/support/setup-env.ts'],
  // each run's temp files live in one folder, removed at the end (test/support/global-setup.ts)
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
};

export default config;
