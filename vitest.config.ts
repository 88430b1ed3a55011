import { defineConfig } from 'vitest/config';

// Three tiers (see ARCHITECTURE.md "Testing tiers"): pure unit tests, integration tests against real
// PostgreSQL / PGlite / QEMU, and end-to-end tests with real microVMs and Chromium.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['packages/*/src/**/*.test.ts', 'packages/*/test/unit/**/*.test.ts', 'test/support/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          // test/security: the attack suite against the manager's API (authn matrix, fuzz, SSRF, login, hosts).
          include: ['packages/*/test/integration/**/*.test.ts', 'test/security/**/*.test.ts'],
          globalSetup: ['packages/manager/test/support/global-postgres.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 600_000,
          hookTimeout: 600_000,
          fileParallelism: false,
          // After unit and integration: one host's agent owns 169.254.169.254:80 (MMDS), and VMs boot faster alone.
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
