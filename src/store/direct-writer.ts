import fs from 'node:fs/promises'
import { createAlignedSlots } from './aligned-slots.ts'
import { errnoCode } from './fs-util.ts'
import type { BufferPool } from './buffer-pool.ts'

/**
 * Writes whole block files with O_DIRECT, from the process's buffers straight to the disk.
 *
 * Why: a buffered write copies every byte into the page cache and the group-commit fsync then
 * writes it out, so a durable add pays the disk twice on the CPU. Measured on the bench machine
 * (2 cores, ext4), a 1 GiB in-process import took 2.1–3.2 s buffered, most of it the kernel's
 * page-cache copy (`copy_folio_from_iter_atomic`, 47 % of the daemon's samples during an add) and
 * a 0.6 s sync pass; with direct writes 0.94–1.16 s and a sync pass of 0.08 s, because the sync
 * then only has metadata left to flush. `dd oflag=direct` on the same disk runs as fast as the
 * buffered `dd conv=fsync`, so the disk itself loses nothing.
 *
 * O_DIRECT wants memory, offsets and lengths aligned to the device's block, so the block is
 * copied into a 4 KiB-aligned slot (src/store/aligned-slots.ts; a memcpy, ~0.1 s per GiB) and
 * written padded to 4 KiB, then truncated to its size. Where O_DIRECT is refused (tmpfs, some
 * network file systems) the writer says so once and the caller keeps writing through the page cache.
 */
export interface DirectWriter extends BufferPool {
  /**
   * Writes `parts` (`size` bytes in all) as the new file `path`, created exclusively: an existing
   * `path` throws EEXIST, as `open` with `wx` does, and is left as it is. Once this resolves true
   * the file's bytes and size are on the disk (O_DSYNC), so a sync pass has only its directory
   * entry left to flush. Resolves false, having left no file behind, when it cannot: every slot is
   * in use, the block does not fit a slot, or this file system refuses O_DIRECT (then it stays
   * off). A block that is one slot taken with `take()` is written from that slot, without a copy;
   * it stays the caller's.
   */
  write(path: string, parts: Uint8Array[], size: number): Promise<boolean>
  /** false once the file system refused O_DIRECT, or where the platform has none. */
  readonly enabled: boolean
  /** Blocks written directly so far. */
  readonly written: number
  /** Whether the slots' memory is held (from the first write until it goes idle or is unmapped). */
  readonly mapped: boolean
  /** Lets the slots' memory go (it is mapped again on the next write); slots still lent are not reused. */
  unmap(): void
}

export interface DirectWriterInit {
  /** Largest block written directly; larger ones go through the page cache. Default 1 MiB. */
  slotBytes?: number
  /** Direct writes in flight at most; more fall back to the page cache. Default 8. */
  slots?: number
  /** The slots' memory is let go after this long without a direct write. Default 10 s. */
  idleMs?: number
  /** Alignment of lengths and slots; 4096 suits every common disk (512-byte and 4 KiB sectors). */
  align?: number
}

/** Smaller blocks are not worth a slot: they are written through the page cache (the store's DIRECT_MIN_BYTES). */
const DIRECT_TAKE_MIN_BYTES = 64 * 1024
const O_DIRECT: number | undefined = (fs.constants as Record<string, number | undefined>).O_DIRECT
/**
 * Each write is durable when it returns: with O_DSYNC the data and the size reach the disk in the
 * write itself, instead of the sync pass later opening, fsyncing and closing the file. Those are
 * three thread-pool round trips per block, and on a busy box each round trip waits its turn: during
 * a replica fetch on 2 cores, a block's five (`access`, `open`, `write`, `close`, `rename`) took
 * ~20 ms with 8 writes in flight, for well under 1 ms of work. The disk does the same flush
 * either way (256 files of 1 MiB, 8 at a time: 176-185 ms with O_DSYNC, 155-158 without, 164-174
 * without and then fsynced).
 */
const DIRECT_FLAGS = O_DIRECT == null ? undefined : fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | O_DIRECT | fs.constants.O_DSYNC

export function createDirectWriter (init: DirectWriterInit = {}): DirectWriter {
  const align = init.align ?? 4096
  const slots = createAlignedSlots({ slotBytes: init.slotBytes ?? 1024 * 1024, slots: init.slots ?? 8, align, ...(init.idleMs == null ? {} : { idleMs: init.idleMs }) })
  const slotBytes = slots.slotBytes
  let enabled = DIRECT_FLAGS != null
  let written = 0
  // slots handed out by take(), until release()
  const lent = new Set<Uint8Array>()

  const unmap = (): void => {
    slots.unmap()
    lent.clear()
  }

  const writeSlot = async (path: string, slot: Uint8Array, size: number): Promise<boolean> => {
    let handle: fs.FileHandle
    try {
      handle = await fs.open(path, DIRECT_FLAGS, 0o644)
    } catch (err) {
      if (errnoCode(err) !== 'EINVAL') throw err
      enabled = false
      return false
    }
    let done = false
    try {
      const padded = Math.ceil(size / align) * align
      let offset = 0
      while (offset < padded) {
        const { bytesWritten } = await handle.write(slot, offset, padded - offset, offset)
        if (bytesWritten === 0) throw new Error(`direct write of ${path} made no progress`)
        offset += bytesWritten
      }
      if (padded !== size) {
        await handle.truncate(size)
        // O_DSYNC covers writes, not the size a truncate sets
        await handle.datasync()
      }
      done = true
    } catch (err) {
      // a misaligned buffer or length is EINVAL on the write, not the open
      if (errnoCode(err) !== 'EINVAL') throw err
      enabled = false
    } finally {
      await handle.close()
      if (!done) await fs.rm(path, { force: true })
    }
    return done
  }

  /** The slot `view` starts, when it is one of the current mapping's slots handed out by `take`. */
  const slotOf = (view: Uint8Array): Uint8Array | undefined => {
    const slot = slots.slotOf(view)
    return slot != null && lent.has(slot) ? slot : undefined
  }

  return {
    take (size) {
      if (!enabled || size > slotBytes || size < DIRECT_TAKE_MIN_BYTES) return new Uint8Array(size)
      const slot = slots.take()
      if (slot == null) return new Uint8Array(size)
      lent.add(slot)
      return slot.subarray(0, size)
    },
    release (view) {
      const slot = slotOf(view)
      if (slot == null) return
      lent.delete(slot)
      slots.give(slot)
    },
    get free () {
      return slots.free
    },
    async write (path, parts, size) {
      if (!enabled || size > slotBytes) return false
      const lentSlot = parts.length === 1 ? slotOf(parts[0] as Uint8Array) : undefined
      if (lentSlot != null) {
        lentSlot.fill(0, size, Math.ceil(size / align) * align)
        const ok = await writeSlot(path, lentSlot, size)
        if (ok) written++
        return ok
      }
      const slot = slots.take()
      if (slot == null) return false
      try {
        let at = 0
        for (const part of parts) {
          slot.set(part, at)
          at += part.byteLength
        }
        // the padding goes to disk before the truncate: zeroes, not the slot's previous block
        slot.fill(0, size, Math.ceil(size / align) * align)
        const ok = await writeSlot(path, slot, size)
        if (ok) written++
        return ok
      } finally {
        slots.give(slot)
      }
    },
    get enabled () {
      return enabled
    },
    get written () {
      return written
    },
    get mapped () {
      return slots.mapped
    },
    unmap
  }
}
