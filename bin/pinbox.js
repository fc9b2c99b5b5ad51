#!/usr/bin/env node
// The CLI is TypeScript run by Node's built-in type stripping (Node >= 22.18), so there is no
// build step between a checkout and a working `pinbox`.
import { enableCompileCache } from 'node:module'

// V8's code cache on disk (in the OS temp folder unless NODE_COMPILE_CACHE names one): every
// later `pinbox` call and daemon start skips most of the parsing and compiling of its ~1300
// modules, a third of the daemon's start-up on a small box. Enabled before main is imported.
enableCompileCache()
const { main } = await import('../src/cli/main.ts')

main(process.argv).then((code) => {
  process.exitCode = code
})
