import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.spec.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests start real daemons, LevelDB stores and chains: keep the 2-core machine from thrashing.
    maxWorkers: 2,
    pool: 'forks'
  }
})
