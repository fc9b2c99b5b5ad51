import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest'
import { Signature, ZeroAddress, parseEther } from 'ethers'
import type { Wallet } from 'ethers'
import { startAnvil, deploy, expectRevert } from '../helpers/anvil.ts'
import type { Anvil } from '../helpers/anvil.ts'

const CAP = parseEther('1000000')

describe('PinboxToken (ERC-20, cap, roles, permit) on anvil cancun', () => {
  let anvil: Anvil
  let admin: Wallet
  let alice: Wallet
  let bob: Wallet
  let carol: Wallet
  let token: any
  let snap: string

  beforeAll(async () => {
    anvil = await startAnvil({ hardfork: 'cancun' })
    admin = anvil.wallet(0)
    alice = anvil.wallet(1)
    bob = anvil.wallet(2)
    carol = anvil.wallet(3)
    token = await deploy('PinboxToken', admin, ['Pinbox', 'PIN', CAP, admin.address])
    await (await token.mint(alice.address, parseEther('100'))).wait()
  })
  afterAll(async () => { await anvil?.stop() })
  beforeEach(async () => { snap = await anvil.snapshot() })
  afterEach(async () => { await anvil.revert(snap) })

  const as = (w: Wallet): any => token.connect(w)

  it('has metadata, 18 decimals and the cap', async () => {
    expect(await token.name()).toBe('Pinbox')
    expect(await token.symbol()).toBe('PIN')
    expect(await token.decimals()).toBe(18n)
    expect(await token.cap()).toBe(CAP)
    expect(await token.totalSupply()).toBe(parseEther('100'))
  })

  it('transfers and emits Transfer', async () => {
    const tx = await as(alice).transfer(bob.address, parseEther('30'))
    const receipt = await tx.wait()
    const log = token.interface.parseLog(receipt.logs[0])
    expect(log.name).toBe('Transfer')
    expect(log.args).toEqual([alice.address, bob.address, parseEther('30')])
    expect(await token.balanceOf(alice.address)).toBe(parseEther('70'))
    expect(await token.balanceOf(bob.address)).toBe(parseEther('30'))
  })

  it('approves, reports allowance, transferFrom spends it, with events', async () => {
    const receipt = await (await as(alice).approve(bob.address, parseEther('10'))).wait()
    const log = token.interface.parseLog(receipt.logs[0])
    expect(log.name).toBe('Approval')
    expect(log.args).toEqual([alice.address, bob.address, parseEther('10')])
    expect(await token.allowance(alice.address, bob.address)).toBe(parseEther('10'))
    await (await as(bob).transferFrom(alice.address, carol.address, parseEther('4'))).wait()
    expect(await token.allowance(alice.address, bob.address)).toBe(parseEther('6'))
    expect(await token.balanceOf(carol.address)).toBe(parseEther('4'))
    expect(await token.balanceOf(alice.address)).toBe(parseEther('96'))
  })

  it('rejects insufficient balance and allowance', async () => {
    const args = await expectRevert(as(bob).transfer(alice.address, 1n), 'ERC20InsufficientBalance')
    expect(args).toEqual([bob.address, 0n, 1n])
    await (await as(alice).approve(bob.address, 5n)).wait()
    const a2 = await expectRevert(as(bob).transferFrom(alice.address, bob.address, 6n), 'ERC20InsufficientAllowance')
    expect(a2).toEqual([bob.address, 5n, 6n])
    expect(await token.balanceOf(alice.address)).toBe(parseEther('100'))
  })

  it('rejects the zero address as receiver, spender and mint target', async () => {
    await expectRevert(as(alice).transfer(ZeroAddress, 1n), 'ERC20InvalidReceiver')
    await expectRevert(as(alice).approve(ZeroAddress, 1n), 'ERC20InvalidSpender')
    await expectRevert(token.mint(ZeroAddress, 1n), 'ERC20InvalidReceiver')
    await expectRevert(deploy('PinboxToken', admin, ['P', 'P', CAP, ZeroAddress]), 'PinboxTokenZeroAdmin')
  })

  it('mints up to the cap and not a wei more', async () => {
    const room = CAP - await token.totalSupply()
    await (await token.mint(bob.address, room)).wait()
    expect(await token.totalSupply()).toBe(CAP)
    const args = await expectRevert(token.mint(bob.address, 1n), 'ERC20ExceededCap')
    expect(args).toEqual([CAP + 1n, CAP])
  })

  it('gates minting by MINTER_ROLE and role admin by DEFAULT_ADMIN_ROLE', async () => {
    const minter = await token.MINTER_ROLE()
    const args = await expectRevert(as(alice).mint(alice.address, 1n), 'AccessControlUnauthorizedAccount')
    expect(args).toEqual([alice.address, minter])
    await expectRevert(as(alice).grantRole(minter, alice.address), 'AccessControlUnauthorizedAccount')
    await (await token.grantRole(minter, alice.address)).wait()
    const receipt = await (await as(alice).mint(bob.address, 7n)).wait()
    const names = receipt.logs.map((l: any) => token.interface.parseLog(l)?.name)
    expect(names).toEqual(['Transfer', 'Minted'])
    expect(await token.balanceOf(bob.address)).toBe(7n)
    await (await token.revokeRole(minter, alice.address)).wait()
    await expectRevert(as(alice).mint(alice.address, 1n), 'AccessControlUnauthorizedAccount')
  })

  async function permitSig (signer: Wallet, owner: string, spender: string, value: bigint, deadline: bigint, nonce?: bigint): Promise<Signature> {
    const domain = { name: 'Pinbox', version: '1', chainId: anvil.chainId, verifyingContract: await token.getAddress() }
    const types = {
      Permit: [
        { name: 'owner', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'value', type: 'uint256' },
        { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' }
      ]
    }
    const n = nonce ?? await token.nonces(owner)
    return Signature.from(await signer.signTypedData(domain, types, { owner, spender, value, nonce: n, deadline }))
  }

  async function now (): Promise<bigint> {
    const block = await anvil.provider.getBlock('latest')
    return BigInt(block?.timestamp ?? 0)
  }

  it('permit: a valid signature sets the allowance (relayed by anyone) and bumps the nonce', async () => {
    const deadline = await now() + 3600n
    const sig = await permitSig(alice, alice.address, bob.address, 42n, deadline)
    await (await as(carol).permit(alice.address, bob.address, 42n, deadline, sig.v, sig.r, sig.s)).wait()
    expect(await token.allowance(alice.address, bob.address)).toBe(42n)
    expect(await token.nonces(alice.address)).toBe(1n)
    await (await as(bob).transferFrom(alice.address, bob.address, 42n)).wait()
    expect(await token.balanceOf(bob.address)).toBe(42n)
  })

  it('permit: rejects expired, replayed and wrongly signed permits', async () => {
    const past = await now() - 1n
    const expired = await permitSig(alice, alice.address, bob.address, 1n, past)
    await expectRevert(token.permit(alice.address, bob.address, 1n, past, expired.v, expired.r, expired.s), 'ERC2612ExpiredSignature')

    const deadline = await now() + 3600n
    const sig = await permitSig(alice, alice.address, bob.address, 5n, deadline)
    await (await token.permit(alice.address, bob.address, 5n, deadline, sig.v, sig.r, sig.s)).wait()
    // the nonce moved on, so the same signature now recovers to some other address
    await expectRevert(token.permit(alice.address, bob.address, 5n, deadline, sig.v, sig.r, sig.s), 'ERC2612InvalidSigner')

    const forged = await permitSig(carol, alice.address, carol.address, 1000n, deadline)
    const args = await expectRevert(token.permit(alice.address, carol.address, 1000n, deadline, forged.v, forged.r, forged.s), 'ERC2612InvalidSigner')
    expect(args).toEqual([carol.address, alice.address])
    expect(await token.allowance(alice.address, carol.address)).toBe(0n)
    expect(await token.allowance(alice.address, bob.address)).toBe(5n)
  })
})
