"""mirrorflow.jobs: numba's disk cache for jitted functions a package compiles without one."""

import subprocess
import sys

from mirrorflow.jobs import cache_jitted

PACKAGE = """\
from numba import njit


@njit
def add(a, b):
    return a + b
"""

LOAD = """\
import jitpkg
from mirrorflow.jobs import cache_jitted

cache_jitted("jitpkg")
assert jitpkg.add(2, 3) == 5
print(sum(jitpkg.add.stats.cache_hits.values()), sum(jitpkg.add.stats.cache_misses.values()))
"""


def test_cache_jitted_keeps_the_compiled_code_for_the_next_process(tmp_path, monkeypatch):
    """A package's @njit function without ``cache=True``: once its cache is on, the first
    process compiles and stores it, the next one loads it without compiling."""
    (tmp_path / "jitpkg").mkdir()
    (tmp_path / "jitpkg" / "__init__.py").write_text(PACKAGE)
    monkeypatch.syspath_prepend(tmp_path)
    import jitpkg

    assert cache_jitted("jitpkg") == 1
    assert cache_jitted("jitpkg") == 0  # on already
    assert jitpkg.add(1, 2) == 3
    assert list((tmp_path / "jitpkg" / "__pycache__").glob("*.nbi"))  # numba's cache index
    result = subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True,
                            cwd=tmp_path, check=True)
    assert result.stdout.split() == ["1", "0"]  # one hit, no miss: loaded, not compiled
    sys.modules.pop("jitpkg")
