import { randomBytes } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { Uint8ArrayList } from 'uint8arraylist'
import { afterEach, describe, expect, it } from 'vitest'
import { noiseCrypto } from '../../src/net/noise-crypto.ts'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'
import type { Libp2p } from '@libp2p/interface'

/** noise's own uint8arraylist 2 type; the same list at run time as version 3's (src/net/noise-crypto.ts). */
type NoiseList = Parameters<ICryptoInterface['chaCha20Poly1305Encrypt']>[0]
const listOf = (...parts: Uint8Array[]): NoiseList => new Uint8ArrayList(...parts) as unknown as NoiseList
const bytes = (x: Uint8Array | { subarray(): Uint8Array }): Buffer => Buffer.from(x instanceof Uint8Array ? x : x.subarray())

describe('noise cipher adapter', () => {
  const crypto = noiseCrypto()
  const k = randomBytes(32)
  const nonce = Buffer.alloc(12)
  nonce.writeUInt32LE(7, 4)
  const ad = randomBytes(5)

  it('produces the library\'s ciphertext byte for byte, for arrays and lists, small and frame-sized', () => {
    for (const size of [0, 100, 1199, 1200, 65519]) {
      const plain = randomBytes(size)
      const theirs = bytes(defaultCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, k))
      expect(bytes(crypto.chaCha20Poly1305Encrypt(plain, nonce, ad, k)), `size ${size}`).toEqual(theirs)
      const list = listOf(plain.subarray(0, size >> 1), plain.subarray(size >> 1))
      expect(bytes(crypto.chaCha20Poly1305Encrypt(list, nonce, ad, k)), `list of ${size}`).toEqual(theirs)
      expect(bytes(crypto.chaCha20Poly1305Decrypt(theirs, nonce, ad, k))).toEqual(plain)
      expect(bytes(crypto.chaCha20Poly1305Decrypt(listOf(theirs.subarray(0, 9), theirs.subarray(9)), nonce, ad, k))).toEqual(plain)
    }
  })

  it('refuses a frame with a flipped bit, and a session key that changed in place is not served from the cache', () => {
    const plain = randomBytes(4096)
    const sealed = bytes(crypto.chaCha20Poly1305Encrypt(plain, nonce, ad, k))
    const bad = Buffer.from(sealed)
    bad[100] = (bad[100] as number) ^ 1
    expect(() => crypto.chaCha20Poly1305Decrypt(bad, nonce, ad, k)).toThrow()
    const key = Buffer.from(k)
    const first = bytes(crypto.chaCha20Poly1305Encrypt(plain, nonce, ad, key))
    key[0] = (key[0] as number) ^ 0xff
    const second = bytes(crypto.chaCha20Poly1305Encrypt(plain, nonce, ad, key))
    expect(second).toEqual(bytes(defaultCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, key)))
    expect(second).not.toEqual(first)
  })
})

describe('noise cipher adapter between real libp2p nodes', () => {
  const nodes: Libp2p[] = []
  afterEach(async () => { await Promise.all(nodes.splice(0).map(async n => { await n.stop() })) })

  it('carries 8 MiB intact both ways between a node with the adapter and one with the library\'s default, counting the adapter\'s traffic', async () => {
    let counted = 0
    const make = async (withAdapter: boolean): Promise<Libp2p> => {
      const node = await createLibp2p({
        addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
        transports: [tcp()],
        connectionEncrypters: [withAdapter ? noise({ crypto: noiseCrypto({ onBytes: (n) => { counted += n } }) }) : noise()],
        streamMuxers: [yamux()]
      })
      nodes.push(node)
      return node
    }
    const [ours, theirs] = await Promise.all([make(true), make(false)])
    const data = randomBytes(8 * 1024 * 1024)
    await theirs.handle('/echo/1.0.0', async (stream) => {
      for await (const chunk of stream) {
        if (!stream.send(chunk.subarray())) await stream.onDrain()
      }
      await stream.close()
    })
    const stream = await ours.dialProtocol(theirs.getMultiaddrs()[0]!, '/echo/1.0.0')
    const received: Uint8Array[] = []
    const reading = (async () => { for await (const chunk of stream) received.push(chunk.subarray()) })()
    for (let i = 0; i < data.length; i += 256 * 1024) {
      if (!stream.send(data.subarray(i, i + 256 * 1024))) await stream.onDrain()
    }
    await stream.close()
    await reading
    expect(Buffer.concat(received).equals(data)).toBe(true)
    // sealed on the way out and opened on the way back (frames under 1200 bytes go uncounted), what a GC pacer counts
    expect(counted).toBeGreaterThan(1.99 * data.length)
    expect(counted).toBeLessThan(2.1 * data.length)
  })
})
