/**
 * What `npm start` gives a new user: a daemon with `chain.dev` runs its own local chain,
 * comes up within seconds (the chain and key unlocking follow in the background), and never
 * leaves anvil behind, whether stopped with SIGTERM or killed with SIGKILL.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { initTestRepo, startDaemon, stopAll } from '../helpers/daemon.ts'
import { TEST_SCRYPT_N, refused, waitFor } from './helpers.ts'

const env = { PINBOX_TEST_SCRYPT_N: String(TEST_SCRYPT_N) }

describe('daemon with a dev chain', () => {
  afterAll(async () => { await stopAll() })

  it('serves at once, joins its dev chain in the background, and takes anvil down with it', async () => {
    const repo = await initTestRepo(undefined, { 'chain.dev': true })
    const t0 = Date.now()
    const d = await startDaemon({ repo, env })
    const readyMs = Date.now() - t0
    expect(readyMs).toBeLessThan(15_000)
    const added = await d.json<{ root: string }>(['add', '-'], { stdin: 'served before the chain is up' })
    expect(added.root).toMatch(/^bafk/)

    const status = await waitFor('rewards ready', async () => {
      const s = await d.json(['rewards', 'status'])
      return s.status === 'ready' && s.member === true ? s : undefined
    }, 90_000, 250)
    console.log(`daemon ready in ${readyMs} ms, rewards ready (dev chain deployed and joined) after ${Date.now() - t0} ms`)
    expect(status.operator).toMatch(/^0x/)
    const cfg = JSON.parse(await readFile(join(repo, 'config.json'), 'utf8'))
    const rpcUrl = cfg.chain.rpcUrl as string
    expect(rpcUrl).toMatch(/^http:\/\/127\.0\.0\.1:/)
    expect(await refused(rpcUrl)).toBe(false)
    const members = await d.json(['pool', 'members'])
    const id = await d.json(['id'])
    expect(members.members.map((m: any) => m.peerId)).toContain(id.ID ?? id.id ?? id.peerId)

    d.kill('SIGKILL')
    await d.exited
    await waitFor('anvil gone after the daemon was killed', async () => await refused(rpcUrl), 10_000)

    // restarted on the same repo: the chain state survives; SIGTERM stops the chain too
    const again = await startDaemon({ repo, env })
    await waitFor('rewards ready again', async () => (await again.json(['rewards', 'status'])).status === 'ready', 90_000, 500)
    const cfg2 = JSON.parse(await readFile(join(repo, 'config.json'), 'utf8'))
    expect(cfg2.chain.storage).toBe(cfg.chain.storage)
    await again.stop()
    expect(await refused(cfg2.chain.rpcUrl as string)).toBe(true)
  }, 240_000)
})
