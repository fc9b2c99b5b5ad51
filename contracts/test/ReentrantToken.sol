// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

interface ITokenReceiverHook {
    function onTokenReceived(address from, uint256 amount) external;
}

/**
 * @title ReentrantToken
 * @notice Test-only ERC-20 that calls `onTokenReceived` on a contract recipient after every
 * transfer (like ERC-777/ERC-1363 hooks), giving the recipient a chance to re-enter the
 * payer in the middle of its transfer.
 */
contract ReentrantToken is ERC20 {
    constructor() ERC20("Reentrant", "REE") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (from != address(0) && to.code.length != 0) {
            // recipients without the hook (like the storage contract itself) are fine
            try ITokenReceiverHook(to).onTokenReceived(from, value) {} catch {}
        }
    }
}

/**
 * @title ReentrancyAttacker
 * @notice Test-only account contract: forwards calls, and when it receives tokens it replays
 * an armed call against the payer, recording whether the re-entry succeeded.
 */
contract ReentrancyAttacker is ITokenReceiverHook {
    address public target;
    bytes public armedCall;
    uint256 public attempts;
    uint256 public successes;

    function execute(address to, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory ret) = to.call(data);
        if (!ok) {
            assembly ("memory-safe") { revert(add(ret, 32), mload(ret)) }
        }
        return ret;
    }

    function arm(address target_, bytes calldata data) external {
        target = target_;
        armedCall = data;
    }

    function onTokenReceived(address, uint256) external {
        if (target == address(0) || msg.sender == target) return;
        if (attempts >= 3) return;
        ++attempts;
        (bool ok,) = target.call(armedCall);
        if (ok) ++successes;
    }
}
