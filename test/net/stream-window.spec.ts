import { generateKeyPair } from '@libp2p/crypto/keys'
import { MemoryDatastore } from 'datastore-core/memory'
import { createLibp2p } from 'libp2p'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { libp2pOptions, STREAM_WINDOW_BYTES } from '../../src/net/libp2p.ts'
import type { Libp2p, Stream } from '@libp2p/interface'

const PROTOCOL = '/pinbox-test/window/1.0.0'
const MIB = 1024 * 1024

async function node (): Promise<Libp2p> {
  const options = await libp2pOptions({ privateKey: await generateKeyPair('Ed25519'), datastore: new MemoryDatastore() }, {
    listen: ['/ip4/127.0.0.1/tcp/0'],
    announce: [],
    autonat: false,
    dht: { amino: { enabled: false, mode: 'client' }, pool: { enabled: false } }
  }, 'pinbox-test')
  return await createLibp2p(options)
}

describe('the daemon\'s stream muxer', () => {
  let sender: Libp2p
  let receiver: Libp2p

  beforeAll(async () => {
    [sender, receiver] = await Promise.all([node(), node()])
  })

  afterAll(async () => {
    await Promise.all([sender?.stop(), receiver?.stop()])
  })

  it('lets a stream\'s peer send at most its window ahead of a paused reader', async () => {
    const incoming = new Promise<Stream>(resolve => {
      void receiver.handle(PROTOCOL, (stream) => { resolve(stream) })
    })
    const out = await sender.dialProtocol(receiver.getMultiaddrs(), PROTOCOL)
    const stream = await incoming
    // a reader that keeps up first, so yamux grows the window to its maximum, then stops reading
    let read = 0
    let paused = false
    const grown = new Promise<void>(resolve => {
      stream.addEventListener('message', (evt) => {
        read += evt.data.byteLength
        if (!paused && read >= 48 * MIB) {
          paused = true
          stream.pause()
          resolve()
        }
      })
    })
    stream.maxReadBufferLength = 64 * MIB
    const chunk = new Uint8Array(256 * 1024)
    // 32 MiB more than the reader takes: what stays behind is held by the window alone
    for (let sent = 0; sent < 80 * MIB; sent += chunk.byteLength) {
      if (!out.send(chunk)) await new Promise(resolve => setTimeout(resolve, 5))
    }
    await grown
    await new Promise(resolve => setTimeout(resolve, 300))
    // what arrived past the pause waits in the reader's buffer: bounded by the window, not 16 MiB
    expect(stream.readBufferLength).toBeGreaterThan(0)
    expect(stream.readBufferLength).toBeLessThanOrEqual(STREAM_WINDOW_BYTES + 256 * 1024)
    out.abort(new Error('done'))
  }, 30_000)
})
