import { execFile } from 'node:child_process'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

// Runs in a fresh Node: records every module the import loads (Node's own module hooks) and
// prints the npm packages among them.
const LOADER = `
import { registerHooks } from 'node:module'
const packages = new Set()
const copies = {}
let modules = 0
registerHooks({
  load (url, context, next) {
    modules++
    const m = /^(.*node_modules\\/((?:@[^/]+\\/)?[^/]+))\\//.exec(url)
    if (m != null) {
      packages.add(m[2])
      ;(copies[m[2]] ??= new Set()).add(m[1])
    }
    return next(url, context)
  }
})
await import(process.argv[1])
const folders = Object.fromEntries(Object.entries(copies).map(([name, roots]) => [name, roots.size]))
process.stdout.write(JSON.stringify({ modules, packages: [...packages].sort(), folders }))
`

async function loaded (file: string): Promise<{ modules: number, packages: string[], folders: Record<string, number> }> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', LOADER, resolve(ROOT, file)], {
    cwd: ROOT,
    // an on-disk compile cache would not change what loads; keep the run self-contained
    env: { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1' }
  })
  return JSON.parse(stdout)
}

// Start-up time and idle memory follow the number of modules loaded (issue 2's goals: `pinbox id`
// answering 1.5 s after the daemon's spawn, 120 MB idle RSS); these pin the import diet down.
describe('what start-up loads', { timeout: 60_000 }, () => {
  it('the CLI entry loads commander and nothing of the daemon (no libp2p, LevelDB, zod, progress bars, tar)', async () => {
    const { modules, packages } = await loaded('src/cli/main.ts')
    expect(packages).toEqual(['commander'])
    expect(modules).toBeLessThan(100)
  })

  it('the daemon loads neither helia\'s index nor @helia/libp2p (its unused libp2p defaults) nor @helia/http', async () => {
    const { packages } = await loaded('src/node.ts')
    expect(packages).toContain('libp2p')
    expect(packages).toContain('@helia/bitswap')
    for (const name of ['helia', '@helia/libp2p', '@helia/http', '@helia/routers', '@libp2p/webrtc', '@libp2p/auto-tls', '@libp2p/tls', '@libp2p/mplex']) {
      expect(packages, name).not.toContain(name)
    }
  })

  it('optional libp2p services and the pool load only when configured', async () => {
    const { packages } = await loaded('src/node.ts')
    for (const name of ['@libp2p/upnp-nat', '@libp2p/mdns', '@libp2p/kad-dht', '@libp2p/autonat', '@libp2p/dcutr', '@libp2p/bootstrap']) {
      expect(packages, name).not.toContain(name)
    }
  })

  it('the daemon loads each npm package from at most three folders (one hoisted copy, plus the old ones @chainsafe/libp2p-noise and -yamux pin)', async () => {
    // pinbox depends on uint8arraylist 3 and protons-runtime 7 only so that npm hoists those: with
    // the old ones on top, every libp2p package got its own nested copy (13 and 11 were loaded)
    const { folders } = await loaded('src/node.ts')
    const many = Object.entries(folders).filter(([, n]) => n > 3)
    expect(many).toEqual([])
    expect(folders['protons-runtime']).toBeLessThanOrEqual(3)
    expect(folders['uint8arraylist']).toBeLessThanOrEqual(3)
  })

  it('the rewards part of the node loads no ethers until a chain is configured', async () => {
    const { packages } = await loaded('src/rewards/node-rewards.ts')
    expect(packages).not.toContain('ethers')
  })

  it('the whole daemon, its API included, loads no ethers until a chain is configured', async () => {
    const { packages } = await loaded('src/node.ts')
    expect(packages).not.toContain('ethers')
  })
})
