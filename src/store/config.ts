import { peerIdFromString } from '@libp2p/peer-id'
import { z } from 'zod'
import { ConfigInvalidError } from './errors.ts'

const GiB = 1024 ** 3

const BYTE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4
}

/** `10GB` → 10_000_000_000, `1.5GiB`, or a plain byte count. Throws a RangeError on anything else. */
export function parseBytes (value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`not a byte count: ${value}`)
    }
    return value
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value)
  const unit = BYTE_UNITS[(match?.[2] ?? '').toLowerCase() || 'b']
  if (match == null || unit == null) {
    throw new RangeError(`not a size: "${value}" (use a byte count or a number with KB, MB, GB, TB, KiB, MiB, GiB or TiB)`)
  }
  return Math.round(Number(match[1]) * unit)
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** `30s`, `5m`, `1h`, `1h30m` → milliseconds; a plain number is taken as milliseconds. */
export function parseDuration (value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(`not a duration: ${value}`)
    }
    return value
  }
  const text = value.trim()
  if (!/^(\d+(?:\.\d+)?(ms|s|m|h|d))+$/.test(text)) {
    throw new RangeError(`not a duration: "${value}" (use e.g. 30s, 5m, 1h)`)
  }
  let ms = 0
  for (const [, n, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) {
    ms += Number(n) * (DURATION_UNITS[unit ?? ''] ?? 0)
  }
  return ms
}

const bytesValue = z.union([z.number(), z.string()]).superRefine((v, ctx) => {
  try { parseBytes(v) } catch (err: any) { ctx.addIssue({ code: 'custom', message: err.message }) }
})

const durationValue = z.union([z.number(), z.string()]).superRefine((v, ctx) => {
  try { parseDuration(v) } catch (err: any) { ctx.addIssue({ code: 'custom', message: err.message }) }
})

const port = z.number().int().min(0).max(65535)
const host = z.string().min(1)

// One schema per section so a later issue (network, rewards) adds a section without touching the others.
export const apiSection = z.strictObject({
  host: host.default('127.0.0.1'),
  port: port.default(5101),
  corsOrigins: z.array(z.string()).default([]),
  maxBodyBytes: z.number().int().positive().default(GiB)
})

export const gatewaySection = z.strictObject({
  host: host.default('127.0.0.1'),
  port: port.default(8181)
})

export const swarmSection = z.strictObject({
  listen: z.array(z.string()).default(['/ip4/0.0.0.0/tcp/4101', '/ip4/0.0.0.0/tcp/4102/ws']),
  announce: z.array(z.string()).default([]),
  // empty: a fresh box dials nobody until its owner says so (the README lists the public IPFS ones)
  bootstrap: z.array(z.string()).default([]),
  mdns: z.boolean().default(true),
  upnp: z.boolean().default(false),
  autonat: z.boolean().default(true),
  relay: z.strictObject({ server: z.boolean().default(false) }).prefault({}),
  connections: z.strictObject({
    low: z.number().int().min(0).default(64),
    high: z.number().int().min(1).default(256)
  }).prefault({}).refine(c => c.low <= c.high, { message: 'connections.low must not exceed connections.high' }),
  /** Concurrent inbound streams each peer may open per protocol. */
  inboundStreams: z.strictObject({
    bitswap: z.number().int().min(1).default(64),
    dht: z.number().int().min(1).default(32),
    identify: z.number().int().min(1).default(4),
    ping: z.number().int().min(1).default(4)
  }).prefault({}),
  /** Caps over all connections in bytes per second; '0' is unlimited. */
  bandwidth: z.strictObject({
    up: bytesValue.default('0'),
    down: bytesValue.default('0')
  }).prefault({})
})

export const dhtSection = z.strictObject({
  /** The public IPFS DHT: a client by default so a box behind NAT does not answer for the world. */
  amino: z.strictObject({
    enabled: z.boolean().default(true),
    mode: z.enum(['client', 'server']).default('client')
  }).prefault({}),
  /**
   * The pool's own DHT (protocol /pinbox/<pool.id>/kad/1.0.0), always a server among members.
   * 'auto': on when `pool.members` names any member; a box in no pool has nobody to share it with.
   */
  pool: z.strictObject({
    enabled: z.union([z.boolean(), z.literal('auto')]).default('auto')
  }).prefault({})
})

/** Minimal until the pool work adds members and shares: the id names the pool DHT's protocol. */
export const poolSection = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'a pool id is 1-64 letters, digits, ".", "_" or "-"').default('default'),
  /** Peer ids allowed to ask this node to pin (and to be asked); the chain supplies them later. */
  members: z.array(z.string().superRefine((v, ctx) => {
    try { peerIdFromString(v) } catch { ctx.addIssue({ code: 'custom', message: `not a peer id: "${v}"` }) }
  })).default([]),
  /** Bytes each member may keep on this node. */
  sharePerMember: bytesValue.default('10GB'),
  healthInterval: durationValue.default('1m'),
  /** How long a replica holder may stay unreachable before its replica moves to another member. */
  gracePeriod: durationValue.default('10m'),
  /** Per member: pin-protocol requests and CIDs accepted per minute. */
  requestsPerMinute: z.number().int().min(1).default(600),
  cidsPerMinute: z.number().int().min(1).default(100_000),
  /** Pin requests fetched and pinned at once, over all members. */
  concurrency: z.number().int().min(1).max(64).default(4),
  /** Longest one replica transfer may take. */
  requestTimeout: durationValue.default('30m')
})

export const provideSection = z.strictObject({
  enabled: z.boolean().default(true),
  strategy: z.enum(['roots', 'pinned', 'all']).default('roots'),
  interval: durationValue.default('22h')
})

export const storageSection = z.strictObject({
  max: bytesValue.default('100GB'),
  gcWatermark: z.number().min(1).max(100).default(90),
  gcInterval: durationValue.default('1h')
})

export const importSection = z.strictObject({
  profile: z.enum(['unixfs-v1-2025', 'kubo-v0']).default('unixfs-v1-2025')
})

/**
 * The chain the rewards service works on. Empty until `pinbox chain dev` (or the user) fills
 * rpcUrl, chainId, storage and token; `dev: true` makes the daemon run a local dev chain itself.
 */
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'an address is 0x and 40 hex digits')
export const chainSection = z.strictObject({
  dev: z.boolean().default(false),
  rpcUrl: z.string().url().optional(),
  chainId: z.number().int().positive().optional(),
  storage: address.optional(),
  token: address.optional(),
  poolId: z.number().int().positive().optional(),
  /** A file whose first line is the keystore password (else PINBOX_WALLET_PASSWORD). */
  passwordFile: z.string().optional(),
  pollInterval: durationValue.default('1s'),
  claimInterval: durationValue.default('1h'),
  /** Warn when the operator key holds less gas money than this, in ETH. */
  lowBalance: z.string().regex(/^\d+(\.\d+)?$/).default('0.01'),
  reportFaults: z.boolean().default(true)
})

export const configSchema = z.strictObject({
  api: apiSection.prefault({}),
  gateway: gatewaySection.prefault({}),
  swarm: swarmSection.prefault({}),
  dht: dhtSection.prefault({}),
  provide: provideSection.prefault({}),
  pool: poolSection.prefault({}),
  storage: storageSection.prefault({}),
  import: importSection.prefault({}),
  chain: chainSection.prefault({})
})

export type PinboxConfig = z.infer<typeof configSchema>
export type ImportProfile = PinboxConfig['import']['profile']

export function defaultConfig (): PinboxConfig {
  return configSchema.parse({})
}

/** Validates a config object (missing keys take defaults); refuses unknown keys and bad values naming the dotted key. */
export function parseConfig (json: unknown): PinboxConfig {
  const result = configSchema.safeParse(json)
  if (result.success) {
    return result.data
  }
  const issue = result.error.issues[0]
  if (issue == null) {
    throw new ConfigInvalidError('', 'invalid config')
  }
  const base = issue.path.map(String)
  if (issue.code === 'unrecognized_keys') {
    const key = [...base, issue.keys[0] ?? ''].join('.')
    throw new ConfigInvalidError(key, `unknown config key "${key}"`)
  }
  const key = base.join('.')
  throw new ConfigInvalidError(key, `invalid config value for "${key}": ${issue.message}`)
}

function splitKey (dottedKey: string): string[] {
  const parts = dottedKey.split('.')
  if (dottedKey === '' || parts.some(p => p === '')) {
    throw new ConfigInvalidError(dottedKey, `not a config key: "${dottedKey}"`)
  }
  return parts
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value != null && !Array.isArray(value)
}

export function getConfigValue (cfg: PinboxConfig, dottedKey: string): unknown {
  let node: unknown = cfg
  for (const part of splitKey(dottedKey)) {
    if (!isRecord(node) || !Object.hasOwn(node, part)) {
      throw new ConfigInvalidError(dottedKey, `unknown config key "${dottedKey}"`)
    }
    node = node[part]
  }
  return node
}

/** Returns a new validated config with `dottedKey` set; `raw` is read as JSON when it parses, else as a string. */
export function setConfigValue (cfg: PinboxConfig, dottedKey: string, raw: string): PinboxConfig {
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    value = raw
  }
  const parts = splitKey(dottedKey)
  const next: Record<string, unknown> = structuredClone(cfg)
  let node: Record<string, unknown> = next
  for (const part of parts.slice(0, -1)) {
    const child = node[part]
    if (!isRecord(child)) {
      throw new ConfigInvalidError(dottedKey, `unknown config key "${dottedKey}"`)
    }
    node = child
  }
  const leaf = parts[parts.length - 1] ?? ''
  if (isRecord(node[leaf]) && !isRecord(value)) {
    throw new ConfigInvalidError(dottedKey, `"${dottedKey}" is a section; set one of its keys`)
  }
  node[leaf] = value
  return parseConfig(next)
}
