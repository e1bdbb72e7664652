"""Seeded blocks of Monte Carlo iterations, shared out over Snakemake jobs.

A null distribution of ``n`` iterations is cut into blocks of ``block`` iterations; block
``b`` draws from a generator seeded by (``seed``, ``b``) only, and shard ``s`` of ``S``
computes blocks ``s, s + S, s + 2S, ...``. Merging the blocks in order therefore gives
the same null for any number of shards. Used by the group permutations
(:mod:`mirrorflow.group.inference`) and the ALE null (:mod:`mirrorflow.meta.null`).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import numpy as np

__all__ = ["block_seed", "blocks_of_shard", "n_blocks"]


def block_seed(seed: int, block: int) -> int:
    """The ``random_state`` of block ``block``: a function of (seed, block) only."""
    state = np.random.SeedSequence([int(seed), int(block)]).generate_state(1)[0]
    return int(state % (np.iinfo(np.int32).max - 2)) + 1


def n_blocks(n: int, block: int) -> int:
    """Blocks of ``block`` iterations that hold ``n`` iterations (the last may be short)."""
    return -(-int(n) // int(block))


def blocks_of_shard(shard: int, shards: int, *, n_perm: int, block: int) -> list[int]:
    """The blocks that shard ``shard`` (0-based) of ``shards`` computes."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not in 0..{shards - 1}")
    return list(range(shard, n_blocks(n_perm, block), shards))
