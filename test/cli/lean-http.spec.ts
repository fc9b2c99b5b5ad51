import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

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
