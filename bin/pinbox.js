#!/usr/bin/env node
// The CLI is TypeScript run by Node's built-in type stripping (Node >= 22.18), so there is no
// build step between a checkout and a working `pinbox`.
import { main } from '../src/cli/main.ts'

main(process.argv).then((code) => {
  process.exitCode = code
})
