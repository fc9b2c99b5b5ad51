import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { LevelDatastore } from 'datastore-level'
import { Level } from 'level'
import { createBlockstore } from './blockstore.ts'
import { defaultConfig, parseBytes, parseConfig } from './config.ts'
import { ConfigInvalidError, RepoCorruptError, RepoExistsError, RepoLockedError, RepoNotFoundError, RepoVersionError } from './errors.ts'
import { atomicWriteFile, errnoCode, exists, mapFsError } from './fs-util.ts'
import { createLeases } from './leases.ts'
import type { FlatBlockstore, BlockstoreMeta } from './blockstore.ts'
import type { ImportProfile, PinboxConfig } from './config.ts'
import type { BlockLeases } from './types.ts'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'

export const REPO_VERSION = 1

/** One step of the repo format; `migrate` runs with the repo locked and must be safe to re-run if interrupted. */
export interface Migration {
  from: number
  to: number
  migrate(path: string, db: Level<string, any>): Promise<void>
}

export const migrations: Migration[] = []

export const REPO_FILES = {
  version: 'version',
  config: 'config.json',
  identity: 'identity.key',
  apiToken: 'api.token',
  datastore: 'datastore',
  blocks: 'blocks'
} as const

export function defaultRepoPath (env: NodeJS.ProcessEnv = process.env): string {
  const home = env.PINBOX_HOME
  return home != null && home !== '' ? home : join(homedir(), '.pinbox')
}

export interface InitRepoOptions {
  profile?: ImportProfile
  /** Return the existing repo instead of failing with ERR_REPO_EXISTS. */
  reuse?: boolean
}

export interface InitRepoResult {
  path: string
  peerId: PeerId
  created: boolean
}

export interface OpenRepoOptions {
  /** Overrides `storage.max` from the config. */
  maxBytes?: number
}

export interface Repo {
  path: string
  config: PinboxConfig
  privateKey: PrivateKey
  peerId: PeerId
  apiToken: string
  /** The repo's LevelDB; each service makes its own sublevel ('pins', 'libp2p', ...). */
  db: Level<string, any>
  /** interface-datastore over the 'datastore' sublevel, for libp2p and helia. */
  datastore: Datastore
  blockstore: FlatBlockstore
  leases: BlockLeases
  close(): Promise<void>
}

async function readIdentity (path: string): Promise<PrivateKey> {
  const file = join(path, REPO_FILES.identity)
  try {
    return privateKeyFromProtobuf(await fs.readFile(file))
  } catch (err) {
    throw new RepoCorruptError(`cannot read the identity key ${file}: ${(err as Error).message}`, { cause: err })
  }
}

export async function loadConfig (path: string): Promise<PinboxConfig> {
  const file = join(path, REPO_FILES.config)
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new RepoCorruptError(`config file ${file} is missing`, { cause: err })
    throw err
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new ConfigInvalidError('', `${file} is not valid JSON: ${(err as Error).message}`)
  }
  return parseConfig(json)
}

/** Validates and writes config.json atomically (a crash leaves the old or the new file, never half of one). */
export async function saveConfig (path: string, cfg: PinboxConfig): Promise<void> {
  const valid = parseConfig(cfg)
  await atomicWriteFile(join(path, REPO_FILES.config), JSON.stringify(valid, null, 2) + '\n', { mode: 0o600 })
}

async function openLevel (path: string, createIfMissing: boolean): Promise<Level<string, any>> {
  const location = join(path, REPO_FILES.datastore)
  const db = new Level<string, any>(location)
  try {
    await db.open({ createIfMissing })
  } catch (err: any) {
    if (err?.cause?.code === 'LEVEL_LOCKED' || err?.code === 'LEVEL_LOCKED') {
      throw new RepoLockedError(path, join(location, 'LOCK'), { cause: err })
    }
    if (errnoCode(err?.cause) === 'ENOSPC' || /No space left/i.test(String(err?.cause?.message))) {
      throw mapFsError(Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' }), location)
    }
    throw new RepoCorruptError(`cannot open the datastore ${location}: ${err?.cause?.message ?? err?.message}`, { cause: err })
  }
  return db
}

/**
 * Creates a repo. The version file is written last: a folder without it is an unfinished init,
 * which a later init completes (keeping an identity key it already wrote).
 */
export async function initRepo (path: string, options: InitRepoOptions = {}): Promise<InitRepoResult> {
  if (await exists(join(path, REPO_FILES.version))) {
    if (options.reuse !== true) throw new RepoExistsError(path)
    return { path, peerId: peerIdFromPrivateKey(await readIdentity(path)), created: false }
  }
  try {
    await fs.mkdir(path, { recursive: true, mode: 0o700 })
    const cfg = defaultConfig()
    if (options.profile != null) cfg.import.profile = options.profile
    if (!await exists(join(path, REPO_FILES.config))) await saveConfig(path, cfg)

    let privateKey: PrivateKey
    if (await exists(join(path, REPO_FILES.identity))) {
      privateKey = await readIdentity(path)
    } else {
      privateKey = await generateKeyPair('Ed25519')
      await atomicWriteFile(join(path, REPO_FILES.identity), privateKeyToProtobuf(privateKey), { mode: 0o600 })
    }
    if (!await exists(join(path, REPO_FILES.apiToken))) {
      await atomicWriteFile(join(path, REPO_FILES.apiToken), randomBytes(32).toString('hex') + '\n', { mode: 0o600 })
    }
    await fs.mkdir(join(path, REPO_FILES.blocks), { recursive: true })
    const db = await openLevel(path, true)
    await db.close()
    await atomicWriteFile(join(path, REPO_FILES.version), `${REPO_VERSION}\n`)
    return { path, peerId: peerIdFromPrivateKey(privateKey), created: true }
  } catch (err) {
    throw mapFsError(err, path)
  }
}

async function readVersion (path: string): Promise<number> {
  const file = join(path, REPO_FILES.version)
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new RepoNotFoundError(path, `${path} is not an initialised pinbox repo (no version file): run \`pinbox init\`, or check that the disk holding it is mounted`)
    }
    throw err
  }
  const version = Number.parseInt(text.trim(), 10)
  if (!Number.isSafeInteger(version) || version < 1) throw new RepoCorruptError(`${file} does not hold a repo version`)
  if (version > REPO_VERSION) {
    throw new RepoVersionError(`repo ${path} has version ${version}, newer than this pinbox supports (${REPO_VERSION}): upgrade pinbox`)
  }
  return version
}

/** Applies `table` step by step from `from` up to `to`, recording the version after each step. */
export async function migrateRepo (path: string, db: Level<string, any>, from: number, to: number, table: Migration[] = migrations): Promise<number> {
  let version = from
  while (version < to) {
    const step = table.find(m => m.from === version)
    if (step == null || step.to <= version) throw new RepoVersionError(`no migration of repo ${path} from version ${version}`)
    await step.migrate(path, db)
    version = step.to
    await atomicWriteFile(join(path, REPO_FILES.version), `${version}\n`)
  }
  return version
}

/**
 * Opens an existing repo and takes its lock (LevelDB's fcntl lock on datastore/LOCK, released by
 * the OS when the process dies). Never creates the repo folder: a missing folder is more likely an
 * unmounted disk than a wish for a fresh repo.
 */
export async function openRepo (path: string, options: OpenRepoOptions = {}): Promise<Repo> {
  let st
  try {
    st = await fs.stat(path)
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') throw new RepoNotFoundError(path)
    throw err
  }
  if (!st.isDirectory()) throw new RepoNotFoundError(path, `${path} is not a directory: run \`pinbox init\` or check --repo / PINBOX_HOME`)
  const version = await readVersion(path)
  const db = await openLevel(path, false)
  const opened: Array<{ close(): Promise<void> }> = []
  try {
    await migrateRepo(path, db, version, REPO_VERSION)
    const config = await loadConfig(path)
    const privateKey = await readIdentity(path)
    const apiToken = (await fs.readFile(join(path, REPO_FILES.apiToken), 'utf8')).trim()
    const maxBytes = options.maxBytes ?? parseBytes(config.storage.max)
    const meta = db.sublevel<string, string>('blockstore', { valueEncoding: 'utf8' }) as unknown as BlockstoreMeta
    const blockstore = createBlockstore({ path: join(path, REPO_FILES.blocks), maxBytes, db: meta })
    await blockstore.open()
    opened.push(blockstore)
    // datastore-level wants a Level; a sublevel has the same API.
    const datastore = new LevelDatastore(db.sublevel<string, Uint8Array>('datastore', { keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as Level<string, Uint8Array>)
    await datastore.open()
    opened.push(datastore)
    let closing: Promise<void> | undefined
    return {
      path,
      config,
      privateKey,
      peerId: peerIdFromPrivateKey(privateKey),
      apiToken,
      db,
      datastore,
      blockstore,
      leases: createLeases(),
      close () {
        closing ??= (async () => {
          try {
            await blockstore.close()
            await datastore.close()
          } finally {
            await db.close()
          }
        })()
        return closing
      }
    }
  } catch (err) {
    for (const part of opened.reverse()) await part.close().catch(() => {})
    await db.close().catch(() => {})
    throw err
  }
}
