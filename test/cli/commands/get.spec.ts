import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tar from 'tar-stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { extractTar, safeSegments } from '../../../src/cli/commands/get.ts'

interface TarEntry {
  name: string
  type?: 'file' | 'directory' | 'symlink'
  content?: string
  linkname?: string
}

async function * tarOf (entries: TarEntry[]): AsyncGenerator<Uint8Array> {
  const pack = tar.pack()
  for (const e of entries) {
    if (e.type === 'directory') pack.entry({ name: e.name, type: 'directory' })
    else if (e.type === 'symlink') pack.entry({ name: e.name, type: 'symlink', linkname: e.linkname ?? '' })
    else pack.entry({ name: e.name }, e.content ?? '')
  }
  pack.finalize()
  yield * (pack as AsyncIterable<Uint8Array>)
}

describe('get: tar extraction', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'pinbox-cli-get-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('writes a directory tree under the output path, the top entry renamed to it', async () => {
    const out = join(dir, 'photos')
    const stats = await extractTar(tarOf([
      { name: 'bafyROOT', type: 'directory' },
      { name: 'bafyROOT/a.txt', content: 'A' },
      { name: 'bafyROOT/sub', type: 'directory' },
      { name: 'bafyROOT/sub/b.txt', content: 'BB' },
      { name: 'bafyROOT/sub/link', type: 'symlink', linkname: '../a.txt' }
    ]), out)
    expect(stats).toEqual({ files: 2, directories: 2, bytes: 3 })
    expect(await readFile(join(out, 'a.txt'), 'utf8')).toBe('A')
    expect(await readFile(join(out, 'sub', 'b.txt'), 'utf8')).toBe('BB')
    expect(await readlink(join(out, 'sub', 'link'))).toBe('../a.txt')
    expect((await readdir(dir)).sort()).toEqual(['photos'])
  })

  it('writes a single file to the output path', async () => {
    const out = join(dir, 'note.txt')
    await extractTar(tarOf([{ name: 'bafkFILE', content: 'hello' }]), out)
    expect(await readFile(out, 'utf8')).toBe('hello')
  })

  it.each([
    ['bafyROOT/../../evil.txt'],
    ['/etc/evil.txt'],
    ['bafyROOT/sub/../../../evil.txt']
  ])('refuses the entry %s', async (name) => {
    const out = join(dir, 'out')
    await expect(extractTar(tarOf([
      { name: 'bafyROOT', type: 'directory' },
      { name, content: 'x' }
    ]), out)).rejects.toMatchObject({ code: 'ERR_UNSAFE_PATH' })
    expect((await readdir(dir)).filter((n) => n.includes('evil'))).toEqual([])
  })

  it('refuses to write through a symlink planted by an earlier entry', async () => {
    const out = join(dir, 'out')
    const outside = join(dir, 'outside')
    await expect(extractTar(tarOf([
      { name: 'bafyROOT', type: 'directory' },
      { name: 'bafyROOT/escape', type: 'symlink', linkname: outside },
      { name: 'bafyROOT/escape/pwned.txt', content: 'x' }
    ]), out)).rejects.toMatchObject({ code: 'ERR_UNSAFE_PATH' })
    await expect(lstat(join(outside, 'pwned.txt'))).rejects.toMatchObject({ code: 'ENOENT' })

    // Not even a folder is created through it when the symlink's target exists.
    await mkdir(outside)
    const out3 = join(dir, 'out3')
    await expect(extractTar(tarOf([
      { name: 'bafyROOT', type: 'directory' },
      { name: 'bafyROOT/escape', type: 'symlink', linkname: outside },
      { name: 'bafyROOT/escape/made', type: 'directory' },
      { name: 'bafyROOT/escape/made/pwned.txt', content: 'x' }
    ]), out3)).rejects.toMatchObject({ code: 'ERR_UNSAFE_PATH' })
    expect(await readdir(outside)).toEqual([])

    // A symlink in the place of a file is not followed either.
    const out2 = join(dir, 'out2')
    await expect(extractTar(tarOf([
      { name: 'bafyROOT', type: 'directory' },
      { name: 'bafyROOT/f', type: 'symlink', linkname: join(dir, 'target.txt') },
      { name: 'bafyROOT/f', content: 'x' }
    ]), out2)).rejects.toMatchObject({ code: 'ELOOP' })
    await expect(lstat(join(dir, 'target.txt'))).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('splits names safely', () => {
    expect(safeSegments('a/./b//c')).toEqual(['a', 'b', 'c'])
    expect(() => safeSegments('C:/x')).toThrow(/absolute/)
    expect(() => safeSegments('a/..')).toThrow(/\.\./)
  })
})
