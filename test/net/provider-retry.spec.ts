import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createProvider } from '../../src/net/provider.ts'
import type { ProvideRouter, Provider } from '../../src/net/provider.ts'
import type { Pin } from '../../src/pinning/types.ts'

/**
 * The retry schedule of announcements that reached no router. The DHT side is a router that
 * refuses until told otherwise, as a DHT with no reachable peer does (the real-node provider tests
 * are in provider.spec.ts); the schedule itself is the real LevelDB one.
 */
async function cidOf (text: string): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(text)))
}

function pinOf (cid: CID): Pin {
  return { cid, type: 'recursive' } as unknown as Pin
}

async function until (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

describe('provider retries', () => {
  let dir: string
  let db: Level<string, any>
  let reachable: boolean
  let tried: string[]
  let provider: Provider | undefined
  const router: ProvideRouter = {
    name: 'scripted',
    async provide (cid) {
      tried.push(cid.toString())
      if (!reachable) throw new Error('no peer took the record')
    }
  }
  const noPins = { ls: async function * () {}, reachable: async function * () {} }
  const noBlocks = { cids: async function * () {} }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pinbox-provide-'))
    db = new Level(join(dir, 'db'), { valueEncoding: 'json' })
    await db.open()
    reachable = false
    tried = []
  })

  afterEach(async () => {
    await provider?.stop()
    provider = undefined
    await db.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('tries a failed announcement again after retryMs, and takes it off the list once it reached a router', async () => {
    provider = createProvider({ db, routers: [router], pins: noPins as any, blockstore: noBlocks as any }, { retryMs: 200, initialDelayMs: 3_600_000 })
    await provider.start()
    const cid = await cidOf('a')
    provider.onPinned(pinOf(cid), [])
    await until('the failure', async () => (await provider!.stat()).failed === 1)
    expect(await provider.stat()).toMatchObject({ announced: 0, retrying: 1, total: 0 })

    // still refused: tried again, and again on the list
    await until('a second try', () => tried.length >= 2)
    expect((await provider.stat()).retrying).toBe(1)

    reachable = true
    await until('the announcement', async () => (await provider!.stat()).announced === 1, 2000)
    const stat = await provider.stat()
    expect(stat).toMatchObject({ retrying: 0, total: 1 })
    expect(stat.recent[0]?.cid).toBe(cid.toString())
    const tries = tried.length
    await new Promise(resolve => setTimeout(resolve, 500))
    expect(tried.length).toBe(tries)
  })

  it('tries again shortly after a peer is identified, once for a burst of them', async () => {
    const events = new EventTarget()
    provider = createProvider({ db, routers: [router], pins: noPins as any, blockstore: noBlocks as any, events }, { retryMs: 3_600_000, peerRetryDelayMs: 50, initialDelayMs: 3_600_000 })
    await provider.start()
    const cids = await Promise.all(['a', 'b', 'c'].map(cidOf))
    for (const cid of cids) provider.onPinned(pinOf(cid), [])
    await until('the failures', async () => (await provider!.stat()).failed === 3)

    reachable = true
    for (let i = 0; i < 5; i++) events.dispatchEvent(new Event('peer:identify'))
    await until('the announcements', async () => (await provider!.stat()).announced === 3)
    // three failed tries, then one try each: the five events made one retry
    expect(tried.length).toBe(6)
    expect((await provider.stat()).retrying).toBe(0)

    // nothing left to retry: a new peer starts nothing
    events.dispatchEvent(new Event('peer:identify'))
    await new Promise(resolve => setTimeout(resolve, 150))
    expect(tried.length).toBe(6)
  })

  it('does not retry what was unpinned, nor anything once stopped', async () => {
    const events = new EventTarget()
    provider = createProvider({ db, routers: [router], pins: noPins as any, blockstore: noBlocks as any, events }, { retryMs: 100, peerRetryDelayMs: 10, initialDelayMs: 3_600_000 })
    await provider.start()
    const [kept, dropped] = await Promise.all(['kept', 'dropped'].map(cidOf)) as [CID, CID]
    provider.onPinned(pinOf(kept), [])
    provider.onPinned(pinOf(dropped), [])
    await until('the failures', async () => (await provider!.stat()).failed === 2)
    provider.onUnpinned(pinOf(dropped))
    expect((await provider.stat()).retrying).toBe(1)

    reachable = true
    await until('the announcement', async () => (await provider!.stat()).announced === 1)
    expect(tried.filter(c => c === dropped.toString())).toHaveLength(1)

    reachable = false
    const other = await cidOf('other')
    provider.onPinned(pinOf(other), [])
    await until('its failure', async () => (await provider!.stat()).failed === 3)
    await provider.stop()
    const tries = tried.length
    events.dispatchEvent(new Event('peer:identify'))
    await new Promise(resolve => setTimeout(resolve, 300))
    expect(tried.length).toBe(tries)
  })
})
