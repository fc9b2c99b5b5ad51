/**
 * Reusable block-sized buffers for reads whose bytes leave the process (an HTTP reply).
 *
 * Why: every block read into a fresh 1 MiB buffer is "external" memory to V8, and V8 starts a
 * full mark-compact each time ~64 MB of it has been allocated. Measured with `cat` of 1 GiB,
 * that was a full GC every ~70 ms, about half of the daemon's CPU, plus up to 64 MB of dead
 * buffers resident between collections.
 *
 * A buffer goes back to the pool only through `release()`, called once the consumer is done
 * with the bytes (for a socket: in its write callback). A buffer never released is simply
 * collected, so a forgotten release costs an allocation, never a corruption. `take()` never
 * waits: with every pooled buffer out it allocates.
 */
export interface BufferPool {
  /** A view of exactly `size` bytes: from the pool when it fits a pooled buffer (and is not under `minBytes`), else newly allocated. */
  take(size: number): Uint8Array
  /** Gives the buffer under `view` back; a view of a buffer not from this pool is ignored. */
  release(view: Uint8Array): void
  /** Buffers waiting in the pool. */
  readonly free: number
}

export interface BufferPoolInit {
  /** Size of each pooled buffer; larger requests are allocated. Default 1 MiB (the default chunk). */
  bufferBytes?: number
  /** Buffers kept for reuse at most. Default 16. */
  maxFree?: number
  /**
   * Smaller requests get a buffer of their own, of their size: for a user that may hold many small
   * ones at once (a sender reading ahead on dozens of streams), where a pooled buffer each would
   * hold `bufferBytes` per few KiB. Default 0.
   */
  minBytes?: number
  /**
   * The free buffers are let go once none has been taken or released for this long, so a burst of
   * work leaves no memory behind on an idle box. Default: kept for good.
   */
  idleMs?: number
}

export function createBufferPool (init: BufferPoolInit = {}): BufferPool {
  const bufferBytes = init.bufferBytes ?? 1024 * 1024
  const maxFree = init.maxFree ?? 16
  const minBytes = init.minBytes ?? 0
  const ours = new WeakSet<ArrayBufferLike>()
  const free: ArrayBuffer[] = []
  // a buffer released twice must not be handed out twice
  const isFree = new WeakSet<ArrayBufferLike>()
  let idleTimer: ReturnType<typeof setTimeout> | undefined
  const busy = (): void => {
    if (init.idleMs == null) return
    if (idleTimer == null) {
      idleTimer = setTimeout(() => {
        idleTimer = undefined
        free.length = 0
      }, init.idleMs)
      idleTimer.unref()
    } else {
      idleTimer.refresh()
    }
  }

  return {
    take (size) {
      if (size > bufferBytes || size < minBytes) return new Uint8Array(size)
      busy()
      let buffer = free.pop()
      if (buffer == null) {
        buffer = new ArrayBuffer(bufferBytes)
        ours.add(buffer)
      } else {
        isFree.delete(buffer)
      }
      return new Uint8Array(buffer, 0, size)
    },
    release (view) {
      const buffer = view.buffer
      if (!ours.has(buffer) || isFree.has(buffer) || free.length >= maxFree) return
      busy()
      isFree.add(buffer)
      free.push(buffer as ArrayBuffer)
    },
    get free () {
      return free.length
    }
  }
}
