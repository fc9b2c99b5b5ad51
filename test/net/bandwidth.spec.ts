import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { createTokenBucket } from '../../src/net/bandwidth.ts'
import { addFile, startNode, stopAll } from './helpers.ts'
import type { TestNode } from './helpers.ts'
import type { PinboxConfig } from '../../src/store/config.ts'

const nodes: TestNode[] = []
const dirs: string[] = []
afterAll(async () => { await stopAll(nodes, dirs) }, 30_000)

const SIZE = 2_500_000
const RATE = 1_000_000

/** Seconds `fetcher` takes to pin SIZE bytes that only `source` holds. */
async function timedFetch (fetcherEdit: (cfg: PinboxConfig) => void, sourceEdit: (cfg: PinboxConfig) => void): Promise<number> {
  const source = await startNode(sourceEdit, dirs)
  const fetcher = await startNode(fetcherEdit, dirs)
  nodes.push(source, fetcher)
  const cid = await addFile(source, randomBytes(SIZE))
  expect((await fetcher.rpc('swarm/connect', { arg: source.addr })).status).toBe(200)
  const t0 = performance.now()
  expect((await fetcher.rpc('pin/add', { arg: cid })).body).toEqual({ Pins: [cid] })
  const seconds = (performance.now() - t0) / 1000
  expect(JSON.parse((await fetcher.rpc('pin/verify', { arg: cid, verbose: 'true' })).text.trim()).Ok).toBe(true)
  return seconds
}

describe('bandwidth caps', () => {
  // the bucket starts full (one second of burst), so the capped part is SIZE - RATE. Only lower
  // bounds are asserted: a cap guarantees a minimum duration whatever the load, while an uncapped
  // loopback transfer of 2.5 MB (~0.3 s idle) would break them if the limiter stopped working.
  const ideal = (SIZE - RATE) / RATE

  it('swarm.bandwidth.down caps what a node downloads', async () => {
    const seconds = await timedFetch(cfg => { cfg.swarm.bandwidth.down = '1MB' }, () => {})
    expect(seconds).toBeGreaterThanOrEqual(ideal * 0.6)
    expect(seconds).toBeLessThan(ideal * 5 + 5)
  }, 30_000)

  it('swarm.bandwidth.up caps what a node serves', async () => {
    const seconds = await timedFetch(() => {}, cfg => { cfg.swarm.bandwidth.up = '1MB' })
    expect(seconds).toBeGreaterThanOrEqual(ideal * 0.6)
    expect(seconds).toBeLessThan(ideal * 5 + 5)
  }, 30_000)

  it('a token bucket allows one second of burst, then the rate', () => {
    let now = 0
    const bucket = createTokenBucket(1000, () => now)
    expect(bucket.take(1000)).toBe(0)
    expect(bucket.take(500)).toBe(500)
    now += 250
    expect(bucket.wait()).toBe(250)
    now += 250
    expect(bucket.wait()).toBe(0)
    now += 10_000
    // refill stops at capacity
    expect(bucket.take(1500)).toBe(500)
  })
})
