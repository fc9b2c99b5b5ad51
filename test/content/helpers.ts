import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createBlockstore } from '../../src/store/blockstore.ts'
import type { FlatBlockstore } from '../../src/store/blockstore.ts'
import { concatBytes } from '../../src/content/blocks.ts'
import { CONFORMANCE_FIXTURES } from '../helpers/fixtures.ts'

export const FIXTURES = CONFORMANCE_FIXTURES

export interface TempStore {
  dir: string
  store: FlatBlockstore
  cleanup(): Promise<void>
}

/** A real flat-file blockstore in a fresh temp folder. */
export async function tempStore (): Promise<TempStore> {
  const dir = await mkdtemp(join(tmpdir(), 'pinbox-content-'))
  const store = createBlockstore({ path: join(dir, 'blocks') })
  await store.open()
  return {
    dir,
    store,
    cleanup: async () => {
      await store.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
}

export async function collect (source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for await (const chunk of source) chunks.push(chunk)
  return concatBytes(chunks)
}

export async function * bytesOf (...parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield * parts
}

/** Deterministic pseudo-random bytes, so no two chunks dedupe and failures reproduce. */
export function pseudoRandom (length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length)
  let x = seed >>> 0 || 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

export async function expectCode (promise: Promise<unknown>, code: string): Promise<Error> {
  try {
    await promise
  } catch (err: any) {
    if (err?.code !== code) {
      throw new Error(`expected ${code}, got ${err?.code ?? err}`, { cause: err })
    }
    return err
  }
  throw new Error(`expected ${code}, but it resolved`)
}

export async function drain (source: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of source) {
    // consume
  }
}
