import { createHash, randomBytes } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { Uint8ArrayList } from 'uint8arraylist'
import { afterEach, describe, expect, it } from 'vitest'
import { noiseCrypto } from '../../src/net/noise-crypto.ts'
import { createSealWatch } from '../../src/net/seal-watch.ts'
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

  it('reports each plaintext piece after sealing it, small frames and large, arrays and lists', () => {
    for (const size of [100, 65519]) {
      const plain = randomBytes(size)
      const original = Buffer.from(plain)
      const pieces: Uint8Array[] = []
      // a sender reuses a buffer as soon as it is reported: scribbling here must not change the ciphertext
      const scribbling = noiseCrypto({ onSeal: (piece) => { pieces.push(piece); piece.fill(0xaa) } })
      const sealed = bytes(scribbling.chaCha20Poly1305Encrypt(plain, nonce, ad, k))
      expect(sealed).toEqual(bytes(defaultCrypto.chaCha20Poly1305Encrypt(original, nonce, ad, k)))
      expect(pieces.length).toBe(1)
      expect(pieces[0]?.buffer).toBe(plain.buffer)
      const again = Buffer.from(original)
      pieces.length = 0
      const listSealed = bytes(scribbling.chaCha20Poly1305Encrypt(listOf(again.subarray(0, 10), again.subarray(10)), nonce, ad, k))
      expect(listSealed).toEqual(sealed)
      expect(pieces.map(p => p.byteLength)).toEqual([10, size - 10])
      expect(pieces.every(p => p.buffer === again.buffer)).toBe(true)
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

  it('reports a sent buffer sealed only once noise has copied all of it: a sender reusing it then sends the right bytes', async () => {
    const watch = createSealWatch()
    const make = async (crypto?: ICryptoInterface): Promise<Libp2p> => {
      const node = await createLibp2p({
        addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
        transports: [tcp()],
        connectionEncrypters: [crypto == null ? noise() : noise({ crypto })],
        streamMuxers: [yamux()]
      })
      nodes.push(node)
      return node
    }
    const [sender, sink] = await Promise.all([make(noiseCrypto({ onSeal: watch.sealed })), make()])
    const received: Uint8Array[] = []
    let done!: () => void
    const finished = new Promise<void>(resolve => { done = resolve })
    await sink.handle('/sink/1.0.0', async (stream) => {
      for await (const chunk of stream) received.push(chunk.subarray())
      done()
    })
    const stream = await sender.dialProtocol(sink.getMultiaddrs()[0]!, '/sink/1.0.0')
    // 64 blocks of 1 MiB through 4 buffers, each refilled (and scribbled over first) only once reported sealed:
    // a report before noise copied the bytes would put scribble on the wire
    const free: Array<Uint8Array<ArrayBuffer>> = Array.from({ length: 4 }, () => new Uint8Array(1024 * 1024))
    const waiting: Array<() => void> = []
    const expected = createHash('sha256')
    let reported = 0
    for (let i = 0; i < 64; i++) {
      while (free.length === 0) await new Promise<void>(resolve => { waiting.push(resolve) })
      const buffer = free.pop() as Uint8Array<ArrayBuffer>
      buffer.set(randomBytes(buffer.byteLength))
      expected.update(buffer)
      watch.watch(buffer, () => {
        reported++
        buffer.fill(0xee)
        free.push(buffer)
        waiting.shift()?.()
      })
      if (!stream.send(buffer)) await stream.onDrain()
    }
    await stream.close()
    await finished
    const got = createHash('sha256')
    for (const chunk of received) got.update(chunk)
    expect(got.digest('hex')).toBe(expected.digest('hex'))
    // every buffer came back: all 64 were reported
    expect(reported).toBe(64)
  })
})
