/**
 * Chain client: one ethers JsonRpcProvider (static network, no chain-id polling) and the two
 * contracts, checked at start (chain id, code at both addresses, storage.token() == token),
 * plus retry with exponential backoff for an RPC endpoint that is down.
 */
import { Contract, Interface, JsonRpcProvider, getAddress, isAddress } from 'ethers'
import type { Signer } from 'ethers'
import { STORAGE_ABI, TOKEN_ABI } from './abi.ts'
import { ChainIdMismatchError, ChainRevertError, ChainUnavailableError, ContractNotFoundError } from './errors.ts'

export interface ChainSettings {
  rpcUrl: string
  chainId: number
  storage: string
  token: string
}

export interface ChainParams {
  genesisBlock: number
  epochLength: number
  proofWindow: number
  faultThreshold: number
  faultWindow: number
}

export interface ChainClient {
  readonly settings: ChainSettings
  readonly provider: JsonRpcProvider
  /** Typed `any`: the methods come from the ABI at run time. */
  readonly storage: any
  readonly token: any
  /** Chain id, code at both addresses, storage.token() == token; throws the typed errors. */
  check(options?: { signal?: AbortSignal }): Promise<ChainParams>
  storageAs(signer: Signer): any
  tokenAs(signer: Signer): any
  close(): void
}

export interface ChainClientOptions {
  /** Provider polling interval for tx.wait(); short on a fast dev chain. */
  pollingIntervalMs?: number
}

export const storageInterface = new Interface(STORAGE_ABI as unknown as string[])
const tokenInterface = new Interface(TOKEN_ABI as unknown as string[])

export function createChainClient (settings: ChainSettings, options: ChainClientOptions = {}): ChainClient {
  for (const key of ['storage', 'token'] as const) {
    if (!isAddress(settings[key])) throw new ContractNotFoundError(`chain.${key} is not an address: "${settings[key]}"`)
  }
  const provider = new JsonRpcProvider(settings.rpcUrl, settings.chainId, {
    staticNetwork: true,
    pollingInterval: options.pollingIntervalMs ?? 1000,
    cacheTimeout: -1
  })
  const storage: any = new Contract(getAddress(settings.storage), storageInterface, provider)
  const token: any = new Contract(getAddress(settings.token), tokenInterface, provider)

  return {
    settings,
    provider,
    storage,
    token,
    async check () {
      let chainId: bigint
      try {
        chainId = BigInt(await provider.send('eth_chainId', []) as string)
      } catch (err) {
        throw new ChainUnavailableError(`the chain RPC endpoint ${settings.rpcUrl} does not answer`, { cause: err })
      }
      if (chainId !== BigInt(settings.chainId)) {
        throw new ChainIdMismatchError(`${settings.rpcUrl} serves chain id ${chainId}, the config says chain.chainId ${settings.chainId}`)
      }
      for (const [name, address] of [['storage', settings.storage], ['token', settings.token]] as const) {
        const code = await provider.getCode(address)
        if (code === '0x') throw new ContractNotFoundError(`no contract at chain.${name} ${address} on chain ${chainId}`)
      }
      let tokenOfStorage: string
      try {
        tokenOfStorage = await storage.token()
      } catch (err) {
        throw new ContractNotFoundError(`chain.storage ${settings.storage} is not a PinboxStorage contract (token() fails)`, { cause: err })
      }
      if (getAddress(tokenOfStorage) !== getAddress(settings.token)) {
        throw new ContractNotFoundError(`chain.storage ${settings.storage} uses token ${tokenOfStorage}, not chain.token ${settings.token}`)
      }
      const [genesisBlock, epochLength, proofWindow, faultThreshold, faultWindow] = await Promise.all([
        storage.genesisBlock(), storage.epochLength(), storage.proofWindow(), storage.faultThreshold(), storage.faultWindow()
      ]) as bigint[]
      return {
        genesisBlock: Number(genesisBlock),
        epochLength: Number(epochLength),
        proofWindow: Number(proofWindow),
        faultThreshold: Number(faultThreshold),
        faultWindow: Number(faultWindow)
      }
    },
    storageAs: (signer) => storage.connect(signer),
    tokenAs: (signer) => token.connect(signer),
    close: () => { provider.destroy() }
  }
}

function revertData (err: any): string | undefined {
  for (const candidate of [err?.data, err?.info?.error?.data, err?.error?.data]) {
    if (typeof candidate === 'string' && candidate.startsWith('0x')) return candidate
  }
  return undefined
}

/** A revert as ERR_CHAIN_REVERT naming the contract's custom error; other errors unchanged. */
export function decodeChainError (err: unknown): unknown {
  const e = err as any
  if (e?.revert?.name != null) {
    return new ChainRevertError(`the chain refused: ${String(e.revert.name)}(${[...(e.revert.args ?? [])].map(String).join(', ')})`, e.revert.name, { cause: err })
  }
  const data = revertData(e)
  if (data != null && data.length >= 10) {
    for (const iface of [storageInterface, tokenInterface]) {
      const parsed = iface.parseError(data)
      if (parsed != null) {
        return new ChainRevertError(`the chain refused: ${parsed.name}(${[...parsed.args].map(String).join(', ')})`, parsed.name, { cause: err })
      }
    }
  }
  if (e?.code === 'CALL_EXCEPTION') return new ChainRevertError(`the chain refused: ${String(e.shortMessage ?? 'reverted')}`, undefined, { cause: err })
  return err
}

/** True for errors of the transport (endpoint down, refused, timed out), not of the chain. */
export function isUnavailable (err: unknown): boolean {
  const e = err as any
  if (e instanceof ChainUnavailableError) return true
  if (e?.code === 'CALL_EXCEPTION' || e instanceof ChainRevertError) return false
  const code = e?.code ?? e?.error?.code
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'TIMEOUT', 'NETWORK_ERROR', 'SERVER_ERROR', 'UNKNOWN_ERROR'].includes(code)) return true
  const text = String(e?.message ?? '')
  return /ECONNREFUSED|fetch failed|socket hang up|ECONNRESET|timeout/i.test(text)
}

export interface BackoffOptions {
  baseMs?: number
  maxMs?: number
  signal?: AbortSignal
  onRetry?: (err: unknown, delayMs: number, attempt: number) => void
}

/** Next delay of an exponential backoff: base × 2^attempt, capped (30 s by default). */
export function backoffDelay (attempt: number, baseMs = 500, maxMs = 30_000): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20))
}

async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, ms)
    const onAbort = (): void => { clearTimeout(timer); reject(signal?.reason) }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Runs `fn` until it succeeds, waiting with backoff after each failure the endpoint caused. */
export async function withRetry<T> (fn: () => Promise<T>, options: BackoffOptions = {}): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    options.signal?.throwIfAborted()
    try {
      return await fn()
    } catch (err) {
      if (!isUnavailable(err)) throw err
      const delay = backoffDelay(attempt, options.baseMs, options.maxMs)
      options.onRetry?.(err, delay, attempt)
      await sleep(delay, options.signal)
    }
  }
}

export { sleep }
