import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'conformance',
          include: ['conformance/**/*.test.ts'],
          globalSetup: ['conformance/support/global-setup.ts'],
          testTimeout: 20000,
          hookTimeout: 20000,
        },
      },
      {
        // the whole suite again, against a Warren with a LevelDB data dir that pages nearly every message
        test: {
          name: 'conformance-paging',
          include: ['conformance/**/*.test.ts'],
          globalSetup: ['conformance/support/global-setup.ts'],
          testTimeout: 20000,
          hookTimeout: 20000,
        },
      },
    ],
  },
});
