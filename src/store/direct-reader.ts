import fs from 'node:fs/promises'
import { createAlignedSlots } from './aligned-slots.ts'
import { createBufferPool } from './buffer-pool.ts'
import { errnoCode } from './fs-util.ts'
import type { BufferPool } from './buffer-pool.ts'

/**
 * Reads whole block files with O_DIRECT into reusable aligned slots, for bytes that only pass
 * through on their way out (a DAG streamed to a pool member).
 *
 * Why: a buffered read of a block that is not cached has the kernel allocate and fill page-cache
 * pages, then copy them into the process. Serving a replica reads every block of the DAG once, so
 * all of that is work (and cache evicted) for nothing. A direct read lands in the slot straight
 * from the disk. Its length is the file's, rounded up to the alignment, not the slot's: the kernel
 * faults in every page a direct read may fill, so reading 10,000 small files into 1 MiB slots took
 * a sender's peak up by the 24 MiB of slots (232 against 195-209 MiB in the four-daemon bench).
 *
 * The reader is a `BufferPool`: a slot comes back through `release()`, once the bytes are sealed
 * into the connection's ciphertext (src/net/seal-watch.ts). A block under `minBytes` is copied out
 * into a buffer of its own and its slot given back at once, so many small reads in flight hold
 * no slots. `take()` and the release of anything but a slot go to `fallback`, the pool a caller
 * reads into when a direct read cannot be made (no slot free, O_DIRECT refused).
 */
export interface DirectReader extends BufferPool {
  /**
   * The whole file at `path`: a view of a slot (give it back with `release`) or, under `minBytes`,
   * a buffer of its own. Undefined when it cannot read it this way: every slot is out, the file
   * does not fit a slot, it shrank while read, or the file system refuses O_DIRECT (then it stays
   * off). A missing file throws, as `open` does.
   */
  read(path: string): Promise<Uint8Array | undefined>
  /** false once the file system refused O_DIRECT, or where the platform has none. */
  readonly enabled: boolean
  /** Files read directly so far. */
  readonly reads: number
  /** Whether the slots' memory is held (from the first read until it goes idle or is unmapped). */
  readonly mapped: boolean
  unmap(): void
}

export interface DirectReaderInit {
  /** Largest file read directly (the slots' size). Default 1 MiB. */
  maxBytes?: number
  /** Slots at most. Default 24. */
  slots?: number
  /** Files under this many bytes are copied out of their slot at once. Default 64 KiB. */
  minBytes?: number
  /** The slots' memory is let go after this long with none out. Default 10 s. */
  idleMs?: number
  align?: number
  /** For reads that are not direct. Default: 1 MiB buffers, as many kept as there are slots, none under `minBytes`, let go after `idleMs`. */
  fallback?: BufferPool
}

const O_DIRECT: number | undefined = (fs.constants as Record<string, number | undefined>).O_DIRECT

export function createDirectReader (init: DirectReaderInit = {}): DirectReader {
  const align = init.align ?? 4096
  const maxBytes = init.maxBytes ?? 1024 * 1024
  const minBytes = init.minBytes ?? 64 * 1024
  const slots = createAlignedSlots({ slotBytes: maxBytes, slots: init.slots ?? 24, align, ...(init.idleMs == null ? {} : { idleMs: init.idleMs }) })
  let enabled = O_DIRECT != null
  let reads = 0
  const lent = new Set<Uint8Array>()
  const fallback = init.fallback ?? createBufferPool({ bufferBytes: maxBytes, maxFree: init.slots ?? 24, minBytes, idleMs: init.idleMs ?? 10_000 })

  /**
   * Reads the whole file into `slot`: its size, or undefined when it is larger than the slot or
   * shrank while read (then the caller's buffered read, which checks that too, has the last word).
   */
  const readInto = async (handle: fs.FileHandle, slot: Uint8Array): Promise<number | undefined> => {
    const { size } = await handle.stat()
    if (size > slot.byteLength) return undefined
    const padded = Math.ceil(size / align) * align
    let filled = 0
    while (filled < size) {
      // each read starts where the last ended, on an aligned offset unless that one was short (the end)
      const { bytesRead } = await handle.read(slot, filled, padded - filled, filled)
      if (bytesRead === 0) return undefined
      filled += bytesRead
    }
    return size
  }

  return {
    async read (path) {
      if (!enabled) return undefined
      const slot = slots.take()
      if (slot == null) return undefined
      let kept = false
      try {
        let handle: fs.FileHandle
        try {
          handle = await fs.open(path, fs.constants.O_RDONLY | (O_DIRECT as number))
        } catch (err) {
          if (errnoCode(err) !== 'EINVAL') throw err
          enabled = false
          return undefined
        }
        let size: number | undefined
        try {
          size = await readInto(handle, slot)
        } catch (err) {
          if (errnoCode(err) !== 'EINVAL') throw err
          enabled = false
          return undefined
        } finally {
          await handle.close()
        }
        if (size == null) return undefined
        reads++
        if (size < minBytes) return slot.slice(0, size)
        kept = true
        lent.add(slot)
        return slot.subarray(0, size)
      } finally {
        if (!kept) slots.give(slot)
      }
    },
    take (size) {
      return fallback.take(size)
    },
    release (view) {
      const slot = slots.slotOf(view)
      if (slot == null) {
        fallback.release(view)
        return
      }
      if (lent.delete(slot)) slots.give(slot)
    },
    get free () {
      return slots.free
    },
    get enabled () {
      return enabled
    },
    get reads () {
      return reads
    },
    get mapped () {
      return slots.mapped
    },
    unmap () {
      slots.unmap()
      lent.clear()
    }
  }
}
