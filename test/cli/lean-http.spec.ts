import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { startDaemon, stopAll, tempDir } from '../helpers/daemon.ts'

const run = promisify(execFile)
const MODULE = fileURLToPath(new URL('../../src/cli/lean-http.ts', import.meta.url))

/** A fresh node process: optionally drop the getters, then import node:http as ESM, as libp2p's WebSockets transport does. */
async function probe (drop: boolean): Promise<{ removed: string[], undici: boolean, http: string, globalWebSocket: string }> {
  const script = `
    const { dropHttpUndiciGetters } = await import(${JSON.stringify(MODULE)})
    const removed = ${drop ? 'dropHttpUndiciGetters()' : '[]'}
    const http = await import('node:http')
    const undici = process.moduleLoadList.some(m => m.includes('undici'))
    console.log(JSON.stringify({ removed, undici, http: typeof http.createServer, globalWebSocket: typeof globalThis.WebSocket }))`
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script])
  return JSON.parse(stdout)
}

describe('dropHttpUndiciGetters', () => {
  it('an ESM import of node:http no longer loads undici; the globals still work', async () => {
    const control = await probe(false)
    // if this ever fails, Node stopped loading undici here and the workaround can go
    expect(control.undici).toBe(true)

    const lean = await probe(true)
    expect(lean.removed).toEqual(['WebSocket', 'CloseEvent', 'MessageEvent'])
    expect(lean.undici).toBe(false)
    expect(lean.http).toBe('function')
    expect(lean.globalWebSocket).toBe('function')
  })
})

describe('the daemon started through bin/pinbox.js', () => {
  afterAll(stopAll)

  it('runs without Node\'s bundled undici: bin/pinbox.js drops the getters before the daemon imports node:http', async () => {
    const dir = await tempDir('pinbox-lean-http-')
    const report = join(dir, 'report.json')
    // loaded into the daemon's own process (NODE_OPTIONS survives its re-exec); reports on SIGUSR2
    const hook = join(dir, 'hook.mjs')
    await writeFile(hook, `
      import { createRequire } from 'node:module'
      import { writeFileSync } from 'node:fs'
      process.on('SIGUSR2', () => {
        const http = createRequire(import.meta.url)('node:http')
        writeFileSync(${JSON.stringify(report)}, JSON.stringify({
          undici: process.moduleLoadList.some(m => m.includes('undici')),
          httpWebSocket: Object.getOwnPropertyDescriptor(http, 'WebSocket') != null
        }))
      })`)
    const d = await startDaemon({ env: { NODE_OPTIONS: `--import ${hook}` } })
    d.kill('SIGUSR2')
    let text: string | undefined
    for (let i = 0; i < 100 && text == null; i++) {
      text = await readFile(report, 'utf8').catch(() => undefined)
      if (text == null) await new Promise(resolve => setTimeout(resolve, 50))
    }
    expect(JSON.parse(text ?? 'null')).toEqual({ undici: false, httpWebSocket: false })
  })
})
