"""Seeded blocks of Monte Carlo iterations, shared out over Snakemake jobs.

A null distribution of ``n`` iterations is cut into blocks of ``block`` iterations; block
``b`` draws from a generator seeded by (``seed``, ``b``) only, and shard ``s`` of ``S``
computes blocks ``s, s + S, s + 2S, ...``. Merging the blocks in order therefore gives
the same null for any number of shards. Shards are saved with the settings they were
computed with, and merged only with the same settings. Used by the group permutations
(:mod:`mirrorflow.group.inference`) and the ALE null (:mod:`mirrorflow.meta.null`).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from mirrorflow.exceptions import ConfigError

__all__ = ["Progress", "block_seed", "blocks_of_shard", "check_blocks", "n_blocks",
           "read_shards", "save_shard"]

LGR = logging.getLogger(__name__)


class Progress:
    """Progress of a long loop in the job's log: at most every ``every`` seconds, and at
    the end, how many of the ``total`` ``unit`` are done, the time each took and the time
    left (``"ALE null shard 1/4: blocks 3/25 done, 2.1 s each, about 46 s left"``)."""

    def __init__(self, what: str, total: int, *, unit: str = "blocks", every: float = 30.0):
        self.what, self.total, self.unit, self.every = what, int(total), unit, every
        self.done = 0
        self.start = self.last = time.monotonic()

    def step(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last < self.every and self.done < self.total:
            return
        self.last = now
        each = (now - self.start) / max(self.done, 1)
        LGR.info("%s: %s %d/%d done, %s each, about %.0f s left", self.what, self.unit,
                 self.done, self.total, f"{each:.2f} s" if each >= 1 else f"{1000 * each:.0f} ms",
                 each * (self.total - self.done))


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


def save_shard(path, blocks: dict, settings: dict, **arrays) -> None:
    """Save a shard: its blocks ``{b: array}``, other ``arrays`` and the ``settings`` it was
    computed with (JSON), as npz written under a temporary name and renamed, so that a
    rerun never trusts a half-written file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, settings=json.dumps(settings, sort_keys=True),
             **{f"block{b}": value for b, value in blocks.items()}, **arrays)
    tmp.replace(path)


def read_shards(paths, settings: dict) -> tuple[dict, list[dict]]:
    """The blocks ``{b: array}`` of shard files and each file's other arrays.

    Raises
    ------
    ConfigError
        If a file was computed with other ``settings``, or a block is in two files.
    """
    expected = json.dumps(settings, sort_keys=True)
    blocks, others = {}, []
    for path in paths:
        with np.load(path) as npz:
            if str(npz["settings"]) != expected:
                raise ConfigError(f"{path}: computed with {npz['settings']}, not {expected}")
            rest = {}
            for name in npz.files:
                if name.startswith("block"):
                    b = int(name[5:])
                    if b in blocks:
                        raise ConfigError(f"{path}: block {b} is in two shards")
                    blocks[b] = npz[name]
                elif name != "settings":
                    rest[name] = npz[name]
            others.append(rest)
    return blocks, others


def check_blocks(blocks: dict, n: int, paths) -> None:
    """Raise :class:`ConfigError` unless blocks ``0..n-1`` are all in ``blocks``."""
    missing = sorted(set(range(n)) - set(blocks))
    if missing:
        raise ConfigError(f"blocks {missing} are missing from {[str(p) for p in paths]}")
