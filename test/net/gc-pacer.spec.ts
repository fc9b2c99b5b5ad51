import { describe, expect, it } from 'vitest'
import { createGcPacer } from '../../src/net/gc-pacer.ts'

const turn = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

describe('GC pacer', () => {
  it('collects once per `everyBytes` counted, off the caller\'s stack, never two pending', async () => {
    let runs = 0
    const pacer = createGcPacer({ minorGc: () => { runs++ } }, { everyBytes: 1000 })
    pacer.note(999)
    await turn()
    expect(runs).toBe(0)
    pacer.note(1)
    // scheduled, not run inside note(): the caller (a cipher) may still hold buffers on its stack
    expect(runs).toBe(0)
    pacer.note(5000)
    await turn()
    expect(runs).toBe(1)
    expect(pacer.collections).toBe(1)
    // the count starts again after a collection
    pacer.note(999)
    await turn()
    expect(runs).toBe(1)
    pacer.note(1)
    await turn()
    expect(runs).toBe(2)
  })

  it('stop() cancels a scheduled collection', async () => {
    let runs = 0
    const pacer = createGcPacer({ minorGc: () => { runs++ } }, { everyBytes: 10 })
    pacer.note(10)
    pacer.stop()
    await turn()
    expect(runs).toBe(0)
  })

  it('frees dead buffers that a transfer would otherwise leave for a full collection', async () => {
    // what the daemon passes it (src/cli/commands/daemon.ts); here from --expose-gc set at run time
    const { setFlagsFromString } = await import('node:v8')
    const { runInNewContext } = await import('node:vm')
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as (o: { type: 'minor' | 'major' }) => void
    const pacer = createGcPacer({ minorGc: () => { gc({ type: 'minor' }) } }, { everyBytes: 4 * 1024 * 1024 })
    gc({ type: 'major' })
    await turn()
    const before = process.memoryUsage().arrayBuffers
    // 64 MiB of 64 KiB buffers, each dead as soon as it is counted (as a sealed noise frame once written)
    for (let i = 0; i < 1024; i++) {
      const frame = Buffer.allocUnsafe(65536)
      pacer.note(frame.byteLength)
      if (i % 16 === 15) await turn()
    }
    await turn()
    expect(pacer.collections).toBeGreaterThanOrEqual(15)
    // without the pacer all 64 MiB are still held here (nothing else allocates enough to collect them)
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(24 * 1024 * 1024)
  })
})
