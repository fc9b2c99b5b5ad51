/**
 * The node's two keys in encrypted JSON keystores (`<repo>/keystore/owner.json` and
 * `operator.json`, mode 0600): the owner holds stake and rewards, the operator is the box's
 * hot key that only proves. Private keys stay inside the Wallet objects: nothing here returns,
 * logs or puts them into an error message.
 */
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Wallet, decryptKeystoreJson, getAddress, encryptKeystoreJson, isKeystoreJson } from 'ethers'
import { atomicWriteFile } from '../store/fs-util.ts'
import { InvalidPrivateKeyError, NoPasswordError, WalletExistsError, WalletNotFoundError, WrongPasswordError } from './errors.ts'

export const WALLET_ROLES = ['owner', 'operator'] as const
export type WalletRole = typeof WALLET_ROLES[number]

export const KEYSTORE_DIR = 'keystore'
export const PASSWORD_ENV = 'PINBOX_WALLET_PASSWORD'

export interface KeystoreOptions {
  /**
   * scrypt cost; the default (2^17, ~1 s) is ethers' and geth's. Tests pass a small N so that
   * a suite does not spend its time in key derivation.
   */
  scryptN?: number
}

export interface WalletAddresses {
  owner?: string
  operator?: string
}

export function keystorePath (repoPath: string, role: WalletRole): string {
  return join(repoPath, KEYSTORE_DIR, `${role}.json`)
}

async function readKeystore (repoPath: string, role: WalletRole): Promise<string | undefined> {
  try {
    return await readFile(keystorePath(repoPath, role), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

async function writeKeystore (repoPath: string, role: WalletRole, wallet: { address: string, privateKey: string }, password: string, options: KeystoreOptions): Promise<void> {
  const json = await encryptKeystoreJson({ address: wallet.address, privateKey: wallet.privateKey }, password,
    options.scryptN == null ? {} : { scrypt: { N: options.scryptN } })
  await mkdir(join(repoPath, KEYSTORE_DIR), { recursive: true, mode: 0o700 })
  await atomicWriteFile(keystorePath(repoPath, role), json + '\n', { mode: 0o600 })
}

async function assertAbsent (repoPath: string, role: WalletRole): Promise<void> {
  if (await readKeystore(repoPath, role) != null) {
    throw new WalletExistsError(`A ${role} keystore already exists at ${keystorePath(repoPath, role)}; refusing to overwrite it`)
  }
}

/** Creates new random keys for `roles` (both by default); refuses when a keystore exists. */
export async function createWallets (repoPath: string, password: string, roles: readonly WalletRole[] = WALLET_ROLES, options: KeystoreOptions = {}): Promise<WalletAddresses> {
  for (const role of roles) await assertAbsent(repoPath, role)
  const out: WalletAddresses = {}
  for (const role of roles) {
    const wallet = Wallet.createRandom()
    await writeKeystore(repoPath, role, wallet, password, options)
    out[role] = wallet.address
  }
  return out
}

/** Stores an existing private key (0x + 64 hex digits) as the `role` key. */
export async function importWallet (repoPath: string, role: WalletRole, privateKey: string, password: string, options: KeystoreOptions = {}): Promise<string> {
  const key = privateKey.trim()
  const normalised = key.startsWith('0x') ? key : `0x${key}`
  if (!/^0x[0-9a-fA-F]{64}$/.test(normalised)) throw new InvalidPrivateKeyError()
  let wallet: Wallet
  try {
    wallet = new Wallet(normalised)
  } catch {
    // the message of ethers' error would quote the key
    throw new InvalidPrivateKeyError('Not a valid secp256k1 private key')
  }
  await assertAbsent(repoPath, role)
  await writeKeystore(repoPath, role, wallet, password, options)
  return wallet.address
}

/** The addresses of the keystores present, read without decrypting them. */
export async function walletAddresses (repoPath: string): Promise<WalletAddresses> {
  const out: WalletAddresses = {}
  for (const role of WALLET_ROLES) {
    const json = await readKeystore(repoPath, role)
    if (json == null) continue
    const address = (JSON.parse(json) as { address?: unknown }).address
    if (typeof address === 'string') out[role] = getAddress(address.startsWith('0x') ? address : `0x${address}`)
  }
  return out
}

export async function hasWallet (repoPath: string, role: WalletRole): Promise<boolean> {
  return await readKeystore(repoPath, role) != null
}

/** Decrypts the `role` keystore; ERR_WRONG_PASSWORD when the password does not open it. */
export async function unlockWallet (repoPath: string, role: WalletRole, password: string): Promise<Wallet> {
  const json = await readKeystore(repoPath, role)
  if (json == null) throw new WalletNotFoundError(`No ${role} keystore at ${keystorePath(repoPath, role)}: run \`pinbox wallet create\``)
  if (!isKeystoreJson(json)) throw new WrongPasswordError(`${keystorePath(repoPath, role)} is not an encrypted JSON keystore`)
  try {
    const account = await decryptKeystoreJson(json, password)
    return new Wallet(account.privateKey)
  } catch {
    // ethers says "incorrect password"; its error carries nothing worth keeping
    throw new WrongPasswordError(`Wrong password for the ${role} keystore ${keystorePath(repoPath, role)}`)
  }
}

export interface PasswordSources {
  passwordFile?: string
  env?: Record<string, string | undefined>
  /** Asks on a terminal; absent when there is none. */
  prompt?: () => Promise<string>
}

/** The password from, in order: a file (its first line), PINBOX_WALLET_PASSWORD, a prompt. */
export async function resolvePassword (sources: PasswordSources): Promise<string> {
  if (sources.passwordFile != null) {
    const text = await readFile(sources.passwordFile, 'utf8')
    return text.split(/\r?\n/)[0] ?? ''
  }
  const fromEnv = sources.env?.[PASSWORD_ENV]
  if (fromEnv != null && fromEnv !== '') return fromEnv
  if (sources.prompt != null) return await sources.prompt()
  throw new NoPasswordError()
}
