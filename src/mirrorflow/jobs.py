"""What a rule's script does in its job process once its imports are done, and the
garbage-collector freeze that it and the library code reading images with nilearn share."""

from __future__ import annotations

import gc
import importlib
from contextlib import contextmanager

__all__ = ["cache_jitted", "frozen_gc", "settle_imports"]

#: Freezes in force (:func:`frozen_gc` blocks and :func:`settle_imports`): the objects are
#: unfrozen only when the last one ends.
_FROZEN = 0


@contextmanager
def frozen_gc():
    """Freeze the interpreter's objects for the garbage collector while nilearn works.

    nilearn calls ``gc.collect()`` whenever it reads an image's data (``safe_get_data``):
    in a process holding many objects that costs ~0.1-0.5 s a call, and a permutation
    loop unmasks one map per permutation. Frozen objects (a permanent generation that
    collections skip) make each call ~1 ms; nothing else changes. Nestable, and inside a
    job after :func:`settle_imports` the objects stay frozen when the block ends."""
    global _FROZEN
    if _FROZEN == 0:
        gc.freeze()
    _FROZEN += 1
    try:
        yield
    finally:
        _FROZEN -= 1
        if _FROZEN == 0:
            gc.unfreeze()


def settle_imports(*modules: str) -> None:
    """Import ``modules`` (the libraries that the job's functions import when called), then
    exempt every object alive so far from garbage collection (:func:`gc.freeze`).

    nilearn runs a full collection each time it reads an image
    (``nilearn._utils.niimg.safe_get_data``), and a full collection visits every tracked
    object: the ~200,000 that nilearn's, NiMARE's and matplotlib's imports leave cost
    0.14 s a collection on this 2-core machine. A first-level or QC job reads images 17
    to 19 times: 62 of the 640 CPU seconds of the executor tests' small study went to
    these collections. Frozen, a collection costs microseconds. What is frozen is what the
    imports made, which lives as long as the process anyway; what the job makes afterwards
    is collected as before."""
    global _FROZEN
    for name in modules:
        importlib.import_module(name)
    gc.freeze()
    _FROZEN += 1  # for the rest of the job: a frozen_gc block's end does not unfreeze


def cache_jitted(*packages: str) -> int:
    """Turn on numba's on-disk cache for the jitted functions of ``packages`` (of their
    modules imported so far) that the package compiles without one; returns how many.

    sparse (NiMARE's sparse arrays) jits its COO indexing without ``cache=True``, so each
    process that indexes one compiles it again: the coordinate simulator spent 6-12 of its
    job's seconds on it (on this 2-core machine, 11.6 s with the compile and 4.7 s with the
    cache). Cached, the compiled code is kept beside the package's modules, or in numba's
    cache folder (``NUMBA_CACHE_DIR``) where they are read-only, and compiled again when
    their source changes, as numba does for ``cache=True``."""
    import sys

    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    count = 0
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in packages:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Dispatcher) and isinstance(value._cache, NullCache):
                value.enable_caching()
                count += 1
    return count
