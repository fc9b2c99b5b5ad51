import { parseEther } from 'ethers'
import { describe, expect, it } from 'vitest'
import { tokens } from '../../src/api/routes/rewards.ts'

describe('token amounts in the rewards routes', () => {
  it('equal ethers\' parseEther for whole and fractional amounts', () => {
    for (const v of ['0', '1', '1000', '0.5', '12.345678901234567891', '0.000000000000000001', '99999999999']) {
      expect(tokens(v, 'stake')).toBe(parseEther(v))
    }
  })

  it('refuse what is not a plain decimal, or finer than 18 decimals', () => {
    for (const v of [undefined, '', '-1', '1e3', '0x10', '1.', '.5', '0.0000000000000000001']) {
      expect(() => tokens(v, 'stake')).toThrow(/stake/)
    }
  })
})
