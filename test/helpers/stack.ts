import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveImportOptions } from '../../src/content/profiles.ts'
import { createPinManager } from '../../src/pinning/pin-manager.ts'
import { initRepo, openRepo } from '../../src/store/repo.ts'
import { createGc } from '../../src/store/gc.ts'
import type { ApiComponents, ApiNetwork } from '../../src/api/types.ts'
import type { ImportOptions } from '../../src/content/types.ts'
import type { PinManager } from '../../src/pinning/types.ts'
import type { Repo } from '../../src/store/repo.ts'

export interface Stack {
  dir: string
  repo: Repo
  pins: PinManager
  components: ApiComponents
  /** Counts `autoGc.poke()` calls, so tests can see that writes nudge the GC. */
  pokes: number
  close(): Promise<void>
}

export interface StackOptions {
  maxBytes?: number
  importDefaults?: ImportOptions
  network?: Partial<ApiNetwork>
}

/** A peer id and key that parse; the API only passes them through. */
const FAKE_NETWORK: ApiNetwork = {
  peerId: () => '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA',
  publicKey: () => 'CAESIDLcUXd/+t8Pnk3qP4KZa63HjIU6XbGwfmaNhEK9LBjB',
  addresses: () => ['/ip4/127.0.0.1/tcp/4101/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'],
  peers: () => [{ peer: '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK', addr: '/ip4/127.0.0.1/tcp/4102', direction: 'outbound' }],
  protocols: () => ['/ipfs/id/1.0.0', '/ipfs/bitswap/1.2.0'],
  agentVersion: 'pinbox/test'
}

/** The real storage stack (repo, flat-file blockstore, leases, LevelDB pins, GC) in a temp folder. */
export async function createStack (options: StackOptions = {}): Promise<Stack> {
  const dir = await mkdtemp(join(tmpdir(), 'pinbox-api-'))
  const path = join(dir, 'repo')
  let repo: Repo | undefined
  try {
    await initRepo(path)
    repo = await openRepo(path, { maxBytes: options.maxBytes ?? 1024 * 1024 * 1024 })
    const opened = repo
    const pins = createPinManager({ db: opened.db.sublevel('pins'), blockstore: opened.blockstore, leases: opened.leases })
    await pins.start()
    const gc = createGc({ blockstore: opened.blockstore, leases: opened.leases, reachable: (o) => pins.reachable(o) })
    const stack: Stack = {
      dir,
      repo: opened,
      pins,
      pokes: 0,
      components: {
        blockstore: opened.blockstore,
        leases: opened.leases,
        pins,
        gc,
        autoGc: { poke: () => { stack.pokes++ } },
        repo: { path, maxBytes: options.maxBytes ?? 1024 * 1024 * 1024 },
        importDefaults: options.importDefaults ?? resolveImportOptions(),
        network: { ...FAKE_NETWORK, ...options.network }
      },
      async close () {
        await pins.stop()
        await opened.close()
        await rm(dir, { recursive: true, force: true })
      }
    }
    return stack
  } catch (err) {
    await repo?.close()
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}
