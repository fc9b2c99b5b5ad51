import { execFile } from 'node:child_process'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { loadMallocTrim } from '../../src/cli/malloc-trim.ts'

const MODULE = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli/malloc-trim.ts')

// In a fresh Node: fills glibc's heap with 64 KiB buffers, each followed by a small one that
// stays, frees the big ones, and reads RSS before and after one trim. The small ones pin the
// freed space below the heap's top, where glibc's free() never gives it back.
const SCRIPT = `
import { readFileSync } from 'node:fs'
const { loadMallocTrim } = await import(process.argv[1])
const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024
let big = []
const small = []
for (let i = 0; i < 3000; i++) {
  big.push(Buffer.allocUnsafeSlow(64 * 1024).fill(1))
  small.push(Buffer.allocUnsafeSlow(1024).fill(2))
}
big = []
for (let i = 0; i < 4; i++) globalThis.gc()
await new Promise(resolve => setTimeout(resolve, 100))
const before = rss()
const trim = loadMallocTrim()
trim()
const after = rss()
process.stdout.write(JSON.stringify({ before, after, kept: small.length }))
`

describe('malloc_trim', () => {
  it('is there on Linux (glibc), and gives freed C-heap pages below the heap top back to the kernel; elsewhere it is absent', async () => {
    if (process.platform !== 'linux') {
      expect(loadMallocTrim()).toBeUndefined()
      return
    }
    expect(loadMallocTrim()).toBeTypeOf('function')
    const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--input-type=module', '-e', SCRIPT, MODULE], {
      // glibc keeps 64 KiB blocks in its heap only below its mmap threshold, which is 128 KiB by default
      env: { ...process.env, MALLOC_ARENA_MAX: '1' }
    })
    const { before, after } = JSON.parse(stdout) as { before: number, after: number }
    // ~190 MB were freed; loading koffi itself adds ~1.4 MB
    expect(before - after).toBeGreaterThan(100 * 1024 * 1024)
  })
})
