import { describe, expect, it } from 'vitest'
import { parseChunker, resolveImportOptions } from '../../src/content/profiles.ts'

describe('import profiles', () => {
  it('defaults to unixfs-v1-2025: CIDv1, raw leaves, 1 MiB chunks, 1024 links', () => {
    const o = resolveImportOptions()
    expect(o).toMatchObject({ cidVersion: 1, rawLeaves: true, chunkSize: 1048576, maxChildrenPerNode: 1024, shardSplitThresholdBytes: 262144, wrapWithDirectory: false, onlyHash: false })
  })

  it('kubo-v0 is CIDv0, 256 KiB chunks, no raw leaves, 174 links', () => {
    expect(resolveImportOptions('kubo-v0')).toMatchObject({ cidVersion: 0, rawLeaves: false, chunkSize: 262144, maxChildrenPerNode: 174 })
  })

  it('CIDv1 implies raw leaves unless rawLeaves is given', () => {
    expect(resolveImportOptions('kubo-v0', { cidVersion: 1 }).rawLeaves).toBe(true)
    expect(resolveImportOptions('kubo-v0', { cidVersion: 1, rawLeaves: false }).rawLeaves).toBe(false)
    expect(resolveImportOptions('unixfs-v1-2025', { cidVersion: 0 })).toMatchObject({ cidVersion: 0, rawLeaves: true })
  })

  it('applies chunker, wrap and only-hash flags', () => {
    expect(resolveImportOptions('kubo-v0', { chunker: 'size-256', wrapWithDirectory: true, onlyHash: true }))
      .toMatchObject({ chunkSize: 256, wrapWithDirectory: true, onlyHash: true })
  })

  it('rejects bad chunkers and unknown profiles with typed errors', () => {
    for (const bad of ['size-0', 'size-', 'rabin-1-2-3', 'buzhash', '256', 'size-1048577', 'size-12abc']) {
      expect(() => parseChunker(bad), bad).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CHUNKER' }))
    }
    expect(parseChunker('size-262144')).toBe(262144)
    expect(() => resolveImportOptions('nope')).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_PROFILE' }))
  })
})
