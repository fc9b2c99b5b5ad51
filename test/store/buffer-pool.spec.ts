import { describe, expect, it } from 'vitest'
import { createBufferPool } from '../../src/store/buffer-pool.ts'

describe('buffer pool', () => {
  it('hands a released buffer out again, as a view of the size asked', () => {
    const pool = createBufferPool({ bufferBytes: 1024, maxFree: 4 })
    const a = pool.take(1000)
    expect(a.byteLength).toBe(1000)
    expect(pool.free).toBe(0)
    pool.release(a.subarray(10, 20))
    expect(pool.free).toBe(1)
    const b = pool.take(512)
    expect(b.buffer).toBe(a.buffer)
    expect(b.byteLength).toBe(512)
    expect(pool.free).toBe(0)
  })

  it('never hands one buffer to two holders: a second release of the same buffer is ignored', () => {
    const pool = createBufferPool({ bufferBytes: 64 })
    const a = pool.take(64)
    pool.release(a)
    pool.release(a)
    expect(pool.free).toBe(1)
    const b = pool.take(64)
    const c = pool.take(64)
    expect(b.buffer).not.toBe(c.buffer)
  })

  it('allocates past its size or when empty, ignores foreign views, and keeps at most maxFree', () => {
    const pool = createBufferPool({ bufferBytes: 64, maxFree: 2 })
    const big = pool.take(65)
    expect(big.byteLength).toBe(65)
    pool.release(big)
    pool.release(new Uint8Array(64))
    expect(pool.free).toBe(0)
    const taken = [pool.take(1), pool.take(1), pool.take(1)]
    expect(new Set(taken.map(t => t.buffer)).size).toBe(3)
    for (const t of taken) pool.release(t)
    expect(pool.free).toBe(2)
  })

  it('lets its free buffers go once idle for idleMs, not while they are in use', async () => {
    const pool = createBufferPool({ bufferBytes: 64, idleMs: 40 })
    const a = pool.take(64)
    pool.release(a)
    expect(pool.free).toBe(1)
    // each take or release restarts the wait
    for (let i = 0; i < 4; i++) {
      await new Promise(resolve => setTimeout(resolve, 20))
      pool.release(pool.take(64))
    }
    expect(pool.free).toBe(1)
    await new Promise(resolve => setTimeout(resolve, 80))
    expect(pool.free).toBe(0)
    // and it works on afterwards
    const b = pool.take(64)
    pool.release(b)
    expect(pool.free).toBe(1)
  })

  it('gives a request under minBytes a buffer of its own size, never a pooled one', () => {
    const pool = createBufferPool({ bufferBytes: 1024, minBytes: 100 })
    pool.release(pool.take(1024))
    expect(pool.free).toBe(1)
    const small = pool.take(99)
    expect(small.buffer.byteLength).toBe(99)
    expect(pool.free).toBe(1)
    // not the pool's, so not taken back
    pool.release(small)
    expect(pool.free).toBe(1)
    const big = pool.take(100)
    expect(big.buffer.byteLength).toBe(1024)
    expect(pool.free).toBe(0)
  })
})
