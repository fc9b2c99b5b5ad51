import { createCipheriv, createDecipheriv, createSecretKey } from 'node:crypto'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'
import type { KeyObject } from 'node:crypto'

/**
 * The list type noise's interface speaks: uint8arraylist 2, its own dependency. pinbox depends on
 * version 3, as the rest of libp2p does (one copy loaded instead of a dozen); at run time both
 * are the same list, recognised by a `Symbol.for` brand, and only their TypeScript types differ.
 */
type NoiseList = Exclude<ReturnType<ICryptoInterface['chaCha20Poly1305Encrypt']>, Uint8Array>

const ALGORITHM = 'chacha20-poly1305'
const TAG_BYTES = 16
/** Below this the library's WebAssembly cipher is faster than a Node cipher object (its own threshold). */
const SMALL = 1200

/**
 * Noise's transport cipher with less work per 64 KiB frame than the library's Node path,
 * byte-for-byte the same ciphertext. The library builds a KeyObject from the session key for
 * every frame (sealing and opening) and joins ciphertext and tag into a new buffer; here the
 * KeyObject is built once per session key, and the frame goes out as [ciphertext, tag]: every
 * buffer allocated outside V8's heap is garbage some collection has to find (src/net/gc-pacer.ts,
 * which the daemon feeds from `onBytes`).
 */
export interface NoiseCryptoInit {
  /** Told the size of every large frame sealed or opened (the traffic a GC pacer counts, src/net/gc-pacer.ts). */
  onBytes?(bytes: number): void
  /**
   * Told every plaintext piece once it is sealed (copied into ciphertext), so a sender can take
   * its buffer back (src/net/seal-watch.ts).
   */
  onSeal?(piece: Uint8Array): void
}

export function noiseCrypto (init: NoiseCryptoInit = {}): ICryptoInterface {
  const onBytes = init.onBytes
  const onSeal = init.onSeal
  const reportSealed = (plaintext: Uint8Array | Iterable<Uint8Array>): void => {
    if (onSeal == null) return
    if (plaintext instanceof Uint8Array) {
      onSeal(plaintext)
    } else {
      for (const part of plaintext) onSeal(part)
    }
  }
  const keys = new WeakMap<Uint8Array, { bytes: Buffer, key: KeyObject }>()
  const keyFor = (k: Uint8Array): KeyObject => {
    const cached = keys.get(k)
    // the array is the session's key; checked by value too, in case a cipher state reuses it for a new key
    if (cached != null && cached.bytes.equals(k)) return cached.key
    const entry = { bytes: Buffer.from(k), key: createSecretKey(k) }
    keys.set(k, entry)
    return entry.key
  }
  return {
    ...defaultCrypto,
    chaCha20Poly1305Encrypt (plaintext, nonce, ad, k) {
      if (plaintext.byteLength < SMALL) {
        const sealed = defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
        reportSealed(plaintext)
        return sealed
      }
      onBytes?.(plaintext.byteLength)
      const cipher = createCipheriv(ALGORITHM, keyFor(k), nonce, { authTagLength: TAG_BYTES })
      cipher.setAAD(ad, { plaintextLength: plaintext.byteLength })
      const out = new Uint8ArrayList()
      if (plaintext instanceof Uint8Array) {
        out.append(cipher.update(plaintext))
      } else {
        for (const part of plaintext) out.append(cipher.update(part))
      }
      const final = cipher.final()
      if (final.byteLength > 0) out.append(final)
      out.append(cipher.getAuthTag())
      reportSealed(plaintext)
      return out as unknown as NoiseList
    },
    chaCha20Poly1305Decrypt (ciphertext, nonce, ad, k, dst) {
      if (ciphertext.byteLength < SMALL) return defaultCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
      const length = ciphertext.byteLength - TAG_BYTES
      onBytes?.(length)
      const decipher = createDecipheriv(ALGORITHM, keyFor(k), nonce, { authTagLength: TAG_BYTES })
      decipher.setAAD(ad, { plaintextLength: length })
      decipher.setAuthTag(ciphertext.subarray(length))
      if (ciphertext instanceof Uint8Array) {
        const plain = decipher.update(ciphertext.subarray(0, length))
        // chacha20-poly1305 is a stream cipher: final() only checks the tag and adds no bytes
        const final = decipher.final()
        return final.byteLength === 0 ? plain : Buffer.concat([plain, final])
      }
      const out = new Uint8ArrayList()
      for (const part of ciphertext.sublist(0, length)) out.append(decipher.update(part))
      const final = decipher.final()
      if (final.byteLength > 0) out.append(final)
      return out as unknown as NoiseList
    }
  }
}
