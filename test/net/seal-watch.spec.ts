import { describe, expect, it } from 'vitest'
import { createSealWatch } from '../../src/net/seal-watch.ts'

describe('seal watch', () => {
  it('reports a buffer once, when the last of its bytes is sealed, whatever the pieces', () => {
    const watch = createSealWatch()
    const buffer = new Uint8Array(1000)
    const view = buffer.subarray(100, 900)
    let calls = 0
    watch.watch(view, () => { calls++ })
    // a piece of another buffer, and pieces of this one outside the watched view, count for nothing
    watch.sealed(new Uint8Array(800))
    watch.sealed(buffer.subarray(0, 100))
    watch.sealed(buffer.subarray(900))
    expect(calls).toBe(0)
    // overlapping the view's start: only the 150 bytes inside count
    watch.sealed(buffer.subarray(50, 250))
    watch.sealed(buffer.subarray(250, 899))
    expect(calls).toBe(0)
    watch.sealed(buffer.subarray(899, 1000))
    expect(calls).toBe(1)
    // nothing more once reported
    watch.sealed(view)
    expect(calls).toBe(1)
  })

  it('reports an empty view at once, and a new watch on the same buffer replaces the old one', () => {
    const watch = createSealWatch()
    let empty = 0
    watch.watch(new Uint8Array(0), () => { empty++ })
    expect(empty).toBe(1)
    const buffer = new Uint8Array(100)
    const seen: string[] = []
    watch.watch(buffer, () => { seen.push('first') })
    watch.sealed(buffer.subarray(0, 50))
    watch.watch(buffer.subarray(0, 10), () => { seen.push('second') })
    watch.sealed(buffer.subarray(0, 10))
    expect(seen).toEqual(['second'])
  })
})
