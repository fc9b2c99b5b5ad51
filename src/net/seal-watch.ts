/**
 * Tells the owner of a buffer when the connection's cipher has sealed every byte of it, so the
 * buffer can be reused for the next block instead of a new one being allocated.
 *
 * Why: a block sent to a member goes through the muxer's and noise's write queues as views of the
 * buffer it was read into; noise copies it into ciphertext only when the socket takes more. Until
 * then nothing can tell the sender it is done with the buffer, so every block read got a new
 * 1 MiB buffer. Those buffers lived long enough (read-ahead plus the stream window, ~50 ms) to
 * survive two scavenges, so they died in the old generation as external memory, which V8 counts
 * against the old generation's limit: a sender marked its whole heap again every ~10 MB sent
 * (trace-gc-verbose, 256 MiB replicated: external memory climbing ~8 MB per scavenge, 3-8 full
 * collections per transfer, most of them atomic).
 *
 * The cipher reports each plaintext piece it seals (`sealed`); a piece is a view of the buffer it
 * came from, so it is matched to a watched buffer by its `ArrayBuffer`. A buffer whose bytes are
 * never all sealed (the stream was aborted) is never reported: its owner just doesn't get it
 * back, and the watch goes with the buffer (a WeakMap).
 */
export interface SealWatch {
  /**
   * Calls `onSealed` once, when every byte of `view` has been sealed. At most one watch per
   * underlying `ArrayBuffer`: a second replaces the first.
   */
  watch(view: Uint8Array, onSealed: () => void): void
  /** Called by the cipher with each plaintext piece just sealed (copied into ciphertext). */
  sealed(piece: Uint8Array): void
}

interface Watched {
  start: number
  end: number
  left: number
  onSealed(): void
}

export function createSealWatch (): SealWatch {
  const watched = new WeakMap<ArrayBufferLike, Watched>()
  return {
    watch (view, onSealed) {
      if (view.byteLength === 0) {
        onSealed()
        return
      }
      watched.set(view.buffer, { start: view.byteOffset, end: view.byteOffset + view.byteLength, left: view.byteLength, onSealed })
    },
    sealed (piece) {
      const entry = watched.get(piece.buffer)
      if (entry == null) return
      const overlap = Math.min(entry.end, piece.byteOffset + piece.byteLength) - Math.max(entry.start, piece.byteOffset)
      if (overlap <= 0) return
      entry.left -= overlap
      if (entry.left > 0) return
      watched.delete(piece.buffer)
      entry.onSealed()
    }
  }
}
