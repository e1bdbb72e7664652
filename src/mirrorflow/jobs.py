"""What a rule's script does in its job process once its imports are done."""

from __future__ import annotations

import gc
import importlib


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
    for name in modules:
        importlib.import_module(name)
    gc.freeze()
