import { describe, it, expect } from 'vitest'
import { networkConfig } from '../../src/net/libp2p.ts'
import { defaultConfig, parseConfig, getConfigValue, setConfigValue, parseBytes, parseDuration } from '../../src/store/config.ts'

function codeAndKey (fn: () => unknown): { code?: string, key?: string, message?: string } {
  try {
    fn()
  } catch (err: any) {
    return { code: err.code, key: err.key, message: err.message }
  }
  throw new Error('expected a throw')
}

describe('config', () => {
  it('has defaults that do not collide with Kubo', () => {
    const cfg = defaultConfig()
    expect(cfg.api).toEqual({ host: '127.0.0.1', port: 5101, corsOrigins: [], maxBodyBytes: 1024 ** 3 })
    expect(cfg.gateway).toEqual({ host: '127.0.0.1', port: 8181 })
    expect(cfg.swarm.listen).toEqual(['/ip4/0.0.0.0/tcp/4101', '/ip4/0.0.0.0/tcp/4102/ws'])
    expect(cfg.swarm.mdns).toBe(true)
    expect(cfg.storage).toEqual({ max: '100GB', gcWatermark: 90, gcInterval: '1h' })
    expect(cfg.import.profile).toBe('unixfs-v1-2025')
  })

  it('runs the pool DHT only for a pool with members unless told (dht.pool.enabled: auto)', () => {
    const member = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'
    expect(defaultConfig().dht.pool.enabled).toBe('auto')
    expect(networkConfig(defaultConfig()).dht?.pool.enabled).toBe(false)
    expect(networkConfig(parseConfig({ pool: { members: [member] } })).dht?.pool.enabled).toBe(true)
    expect(networkConfig(parseConfig({ dht: { pool: { enabled: true } } })).dht?.pool.enabled).toBe(true)
    expect(networkConfig(parseConfig({ dht: { pool: { enabled: false } }, pool: { members: [member] } })).dht?.pool.enabled).toBe(false)
    expect(codeAndKey(() => parseConfig({ dht: { pool: { enabled: 'sometimes' } } })).key).toBe('dht.pool.enabled')
  })

  it('fills missing keys of a partial config', () => {
    const cfg = parseConfig({ api: { port: 6000 } })
    expect(cfg.api.port).toBe(6000)
    expect(cfg.api.host).toBe('127.0.0.1')
    expect(cfg.storage.max).toBe('100GB')
  })

  it('refuses an unknown key naming it', () => {
    expect(codeAndKey(() => parseConfig({ api: { prot: 1 } }))).toMatchObject({ code: 'ERR_CONFIG_INVALID', key: 'api.prot' })
    expect(codeAndKey(() => parseConfig({ nope: {} }))).toMatchObject({ code: 'ERR_CONFIG_INVALID', key: 'nope' })
  })

  it('refuses a bad value naming the key', () => {
    const r = codeAndKey(() => parseConfig({ api: { port: 'high' } }))
    expect(r).toMatchObject({ code: 'ERR_CONFIG_INVALID', key: 'api.port' })
    expect(r.message).toContain('api.port')
    expect(codeAndKey(() => parseConfig({ storage: { max: '10 parsecs' } }))).toMatchObject({ key: 'storage.max' })
    expect(codeAndKey(() => parseConfig({ storage: { gcInterval: 'soon' } }))).toMatchObject({ key: 'storage.gcInterval' })
    expect(codeAndKey(() => parseConfig({ import: { profile: 'x' } }))).toMatchObject({ key: 'import.profile' })
    expect(codeAndKey(() => parseConfig({ api: { port: 70000 } }))).toMatchObject({ key: 'api.port' })
  })

  it('parses byte units and durations', () => {
    expect(parseBytes('100GB')).toBe(100e9)
    expect(parseBytes('1KiB')).toBe(1024)
    expect(parseBytes('1.5 GiB')).toBe(1.5 * 1024 ** 3)
    expect(parseBytes('2TB')).toBe(2e12)
    expect(parseBytes('7mib')).toBe(7 * 1024 ** 2)
    expect(parseBytes(12345)).toBe(12345)
    expect(parseBytes('512')).toBe(512)
    expect(() => parseBytes('10 XB')).toThrow(RangeError)
    expect(() => parseBytes(-1)).toThrow(RangeError)
    expect(parseDuration('30s')).toBe(30_000)
    expect(parseDuration('5m')).toBe(300_000)
    expect(parseDuration('1h')).toBe(3_600_000)
    expect(parseDuration('1h30m')).toBe(5_400_000)
    expect(() => parseDuration('1 fortnight')).toThrow(RangeError)
  })

  it('gets and sets dotted keys, revalidating', () => {
    const cfg = defaultConfig()
    expect(getConfigValue(cfg, 'api.port')).toBe(5101)
    expect(getConfigValue(cfg, 'swarm')).toEqual(cfg.swarm)
    expect(codeAndKey(() => getConfigValue(cfg, 'api.nope'))).toMatchObject({ code: 'ERR_CONFIG_INVALID', key: 'api.nope' })

    const next = setConfigValue(cfg, 'api.port', '6001')
    expect(next.api.port).toBe(6001)
    expect(cfg.api.port).toBe(5101)
    expect(setConfigValue(cfg, 'storage.max', '10GB').storage.max).toBe('10GB')
    expect(setConfigValue(cfg, 'swarm.mdns', 'false').swarm.mdns).toBe(false)
    expect(setConfigValue(cfg, 'swarm.bootstrap', '["/ip4/1.2.3.4/tcp/4101"]').swarm.bootstrap).toEqual(['/ip4/1.2.3.4/tcp/4101'])
    expect(codeAndKey(() => setConfigValue(cfg, 'api.port', 'abc'))).toMatchObject({ code: 'ERR_CONFIG_INVALID', key: 'api.port' })
    expect(codeAndKey(() => setConfigValue(cfg, 'api.nope', '1'))).toMatchObject({ code: 'ERR_CONFIG_INVALID', key: 'api.nope' })
    expect(codeAndKey(() => setConfigValue(cfg, 'nope.deep', '1'))).toMatchObject({ code: 'ERR_CONFIG_INVALID', key: 'nope.deep' })
    expect(codeAndKey(() => setConfigValue(cfg, 'api', '1'))).toMatchObject({ code: 'ERR_CONFIG_INVALID', key: 'api' })
  })
})
