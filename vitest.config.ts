import { defineConfig } from 'vitest/config';

const env = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };

export default defineConfig({
  test: {
    projects: [
      {
        // In-process: pure logic, gateways and handlers against an embedded DynamoDB.
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/gateway/**/*.test.ts', 'test/handler/**/*.test.ts', 'test/simulation/**/*.test.ts'],
          setupFiles: ['test/support/quiet-output.ts', 'test/support/aws-env.ts'],
          env,
        },
      },
      {
        // Out of process: the local stack and the packaged template, as a user runs them.
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts', 'test/stack/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          env,
        },
      },
      {
        // The console in headless Chromium (test/browser/browser.ts finds it, or fails saying how to get one).
        test: {
          name: 'browser',
          include: ['test/browser/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 180_000,
          env,
        },
      },
    ],
  },
});
