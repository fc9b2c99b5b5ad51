// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Capped} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Capped.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/**
 * @title PinboxToken
 * @notice The pinbox reward token: an ERC-20 with 18 decimals, a hard supply cap fixed at
 * deployment, EIP-2612 permits and a role-gated minter.
 * @dev Transfer, approval and cap errors are OpenZeppelin's ERC-6093 custom errors
 * (`ERC20InsufficientBalance`, `ERC20InsufficientAllowance`, `ERC20InvalidReceiver`,
 * `ERC20ExceededCap`, ...); role errors are `AccessControlUnauthorizedAccount`.
 * The storage contract does not depend on this token: it works with any ERC-20.
 */
contract PinboxToken is ERC20Capped, ERC20Permit, AccessControl {
    /// @notice Role allowed to mint new tokens up to the cap.
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @notice The admin address given at deployment is the zero address.
    error PinboxTokenZeroAdmin();

    /// @notice Emitted on every mint, next to the ERC-20 `Transfer` from the zero address.
    event Minted(address indexed minter, address indexed to, uint256 amount);

    /**
     * @param name_ token name (also the EIP-712 domain name used by permits)
     * @param symbol_ token symbol
     * @param cap_ maximum total supply in wei (18 decimals); must be > 0
     * @param admin receives DEFAULT_ADMIN_ROLE and MINTER_ROLE
     *
     * Requirements: `admin` is not the zero address, `cap_` > 0.
     */
    constructor(string memory name_, string memory symbol_, uint256 cap_, address admin)
        ERC20(name_, symbol_)
        ERC20Capped(cap_)
        ERC20Permit(name_)
    {
        if (admin == address(0)) revert PinboxTokenZeroAdmin();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
    }

    /**
     * @notice Mints `amount` to `to`.
     *
     * Requirements: caller has MINTER_ROLE; `to` is not the zero address; the total supply
     * after minting does not exceed the cap.
     *
     * Emits {Transfer} and {Minted}.
     */
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
        emit Minted(msg.sender, to, amount);
    }

    /// @dev The single choke point for balance changes; ERC20Capped enforces the cap on mint.
    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Capped) {
        super._update(from, to, value);
    }
}
