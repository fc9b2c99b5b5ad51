import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import { run } from '../cli/helpers.ts'
import { createWallets, importWallet, keystorePath, resolvePassword, unlockWallet, walletAddresses } from '../../src/rewards/wallet.ts'
import { TEST_SCRYPT_N } from './helpers.ts'

const PASSWORD = 'pw-for-tests'

describe('wallet keystores', () => {
  let dir: string
  let repo: string
  const env = (extra: Record<string, string> = {}): Record<string, string> => ({ PINBOX_TEST_SCRYPT_N: String(TEST_SCRYPT_N), ...extra })

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pinbox-wallet-'))
    repo = join(dir, 'repo')
  })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('wallet create writes two 0600 keystores; show prints the addresses, never a key', async () => {
    const pwFile = join(dir, 'pw')
    await writeFile(pwFile, `${PASSWORD}\n`)
    const created = await run(['--repo', repo, '--json', 'wallet', 'create', '--password-file', pwFile], { env: env() })
    expect(created.code, created.stderr).toBe(0)
    const addresses = JSON.parse(created.stdout) as { owner: string, operator: string }
    expect(addresses.owner).toMatch(/^0x[0-9a-fA-F]{40}$/)
    expect(addresses.operator).not.toBe(addresses.owner)
    for (const role of ['owner', 'operator'] as const) {
      expect((await stat(keystorePath(repo, role))).mode & 0o777).toBe(0o600)
      const wallet = await unlockWallet(repo, role, PASSWORD)
      expect(wallet.address).toBe(addresses[role])
      expect(created.stdout.toLowerCase()).not.toContain(wallet.privateKey.slice(2).toLowerCase())
    }
    const shown = await run(['--repo', repo, '--json', 'wallet', 'show'])
    expect(JSON.parse(shown.stdout)).toEqual(addresses)
    const text = await run(['--repo', repo, 'wallet', 'show'])
    expect(text.stdout).toContain(addresses.owner)

    const again = await run(['--repo', repo, 'wallet', 'create', '--password-file', pwFile], { env: env() })
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/already exists/)
    expect(await walletAddresses(repo)).toEqual(addresses)
  })

  it('takes the password from PINBOX_WALLET_PASSWORD; refuses with no source and no terminal', async () => {
    const res = await run(['--repo', repo, '--json', 'wallet', 'create', '--role', 'operator'], { env: env({ PINBOX_WALLET_PASSWORD: PASSWORD }) })
    expect(res.code, res.stderr).toBe(0)
    expect((await unlockWallet(repo, 'operator', PASSWORD)).address).toBe(JSON.parse(res.stdout).operator)
    const none = await run(['--repo', repo, 'wallet', 'create', '--role', 'owner'], { env: env() })
    expect(none.code).toBe(1)
    expect(none.stderr).toMatch(/No wallet password/)
    await expect(resolvePassword({ env: {} })).rejects.toMatchObject({ code: 'ERR_NO_PASSWORD' })
    await expect(resolvePassword({ env: {}, prompt: async () => 'typed' })).resolves.toBe('typed')
  })

  it('a wrong password is a clear ERR_WRONG_PASSWORD; a missing keystore ERR_WALLET_NOT_FOUND', async () => {
    await createWallets(repo, PASSWORD, ['owner'], { scryptN: TEST_SCRYPT_N })
    await expect(unlockWallet(repo, 'owner', 'nope')).rejects.toMatchObject({ code: 'ERR_WRONG_PASSWORD' })
    await expect(unlockWallet(repo, 'operator', PASSWORD)).rejects.toMatchObject({ code: 'ERR_WALLET_NOT_FOUND' })
  })

  it('wallet import reads the key from stdin, stores it encrypted and never echoes it', async () => {
    const key = Wallet.createRandom().privateKey
    const res = await run(['--repo', repo, '--json', 'wallet', 'import', 'owner'], { env: env({ PINBOX_WALLET_PASSWORD: PASSWORD }), stdin: `${key}\n` })
    expect(res.code, res.stderr).toBe(0)
    expect(JSON.parse(res.stdout).address).toBe(new Wallet(key).address)
    expect(res.stdout + res.stderr).not.toContain(key.slice(2))
    expect((await unlockWallet(repo, 'owner', PASSWORD)).privateKey).toBe(key)

    const bad = '0x' + 'zz'.repeat(32)
    const refused = await run(['--repo', repo, 'wallet', 'import', 'operator'], { env: env({ PINBOX_WALLET_PASSWORD: PASSWORD }), stdin: bad })
    expect(refused.code).toBe(1)
    expect(refused.stderr).not.toContain(bad)
    await expect(importWallet(repo, 'operator', '0x' + '00'.repeat(32), PASSWORD)).rejects.toMatchObject({ code: 'ERR_INVALID_PRIVATE_KEY' })
  })
})
