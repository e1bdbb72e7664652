"""mirrorflow: the neural basis of facial imitation, mimicry and empathy.

Science code for the Snakemake workflow: a seeded study simulator, nipype
preprocessing, nilearn first-level and group models, and NiMARE meta-analysis.
The package never imports Snakemake; rules call thin scripts that call it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mirrorflow")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["__version__"]
