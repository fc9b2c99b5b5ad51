#!/usr/bin/env node
// The CLI is TypeScript run by Node's built-in type stripping (Node >= 22.18), so there is no
// build step between a checkout and a working `pinbox`.
import { enableCompileCache } from 'node:module'

// V8's code cache on disk (in the OS temp folder unless NODE_COMPILE_CACHE names one): every
// later `pinbox` call and daemon start skips most of the parsing and compiling of its ~1300
// modules, a third of the daemon's start-up on a small box. Enabled before main is imported.
enableCompileCache()

// `pinbox daemon` restarts itself in place with its memory settings (src/cli/daemon-runtime.ts);
// the restarted process has them and goes on below.
const { TUNED_ENV, daemonExecPlan } = await import('../src/cli/daemon-runtime.ts')
const plan = daemonExecPlan(process)
if (plan != null && typeof process.execve === 'function') {
  try {
    process.execve(plan.args[0], plan.args, plan.env)
  } catch {
    // execve refused (an unusual sandbox): run with Node's defaults, only using more memory
  }
}

// A long-lived daemon should not carry Node's undici, which an ESM import of node:http pulls in
// (src/cli/lean-http.ts); short CLI calls use fetch, so they keep it.
if (process.env[TUNED_ENV] != null || plan != null) {
  const { dropHttpUndiciGetters } = await import('../src/cli/lean-http.ts')
  dropHttpUndiciGetters()
}

const { main } = await import('../src/cli/main.ts')

main(process.argv).then((code) => {
  process.exitCode = code
})
