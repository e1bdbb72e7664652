"""What the meta-analysis stage writes, named once for the workflow's rules: the maps
NiMARE saves for each estimate (its own names), the subtraction's two directions, and the
early-stop settings of the Monte Carlo nulls."""

from __future__ import annotations

__all__ = [
    "ALE_MAPS",
    "CONTRAST_MAPS",
    "MACM_MAPS",
    "contrast_directions",
    "early_stop_settings",
]

_FWE = "level-{level}_corr-FWE_method-montecarlo"

#: Maps of an ALE with its Monte Carlo FWE correction: the statistic, its p, z and -log p,
#: and the cluster-level (size and mass) and voxel-level corrected maps.
ALE_MAPS = (
    "stat",
    "p",
    "z",
    "logp",
    *(
        f"{kind}_desc-{desc}_{_FWE.format(level='cluster')}"
        for kind in ("z", "logp")
        for desc in ("size", "mass")
    ),
    *(f"{kind}_{_FWE.format(level='voxel')}" for kind in ("z", "logp")),
)

#: Maps of the MACM's ALE: voxel-level FWE only.
MACM_MAPS = (
    "stat",
    "p",
    "z",
    "logp",
    *(f"{kind}_{_FWE.format(level='voxel')}" for kind in ("z", "logp")),
)

#: Maps of NiMARE's ALE subtraction: each group's statistic and their difference.
CONTRAST_MAPS = tuple(
    f"{kind}_desc-{group}"
    for kind in ("stat", "p", "z", "logp")
    for group in ("group1", "group2", "group1MinusGroup2")
)


def contrast_directions(categories) -> list[str]:
    """The subtraction's two directions of the two category labels, in config order:
    ``["mimicryGtContagion", "contagionGtMimicry"]``."""
    first, second = categories

    def title(label):
        return label[0].upper() + label[1:]

    return [f"{first}Gt{title(second)}", f"{second}Gt{title(first)}"]


def early_stop_settings(spec: dict, keys=("early_stop", "alpha")) -> dict | None:
    """The settings a Monte Carlo null's early stop reads (its tolerance and the FWE
    ``keys``) from a config section, or None when ``early_stop`` is off: a rule's params,
    so the null reruns only when they change."""
    if not spec["early_stop"]:
        return None
    return {key: spec[key] for key in keys}
