"""Cross-field checks of the configuration, run at parse time after the schema."""

from __future__ import annotations

import re

from mirrorflow.exceptions import ConfigError

__all__ = ["check_config", "unknown_conditions"]


def unknown_conditions(expression: str, conditions) -> list[str]:
    """Names used in a contrast ``expression`` that are not among ``conditions``, sorted."""
    return sorted(set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expression)) - set(conditions))


def check_config(config: dict) -> None:
    """Raise :class:`ConfigError` for references between keys that the schema cannot check."""
    study = config["study"]
    if study["source"] in ("bids", "fmriprep") and not study.get("bids_dir"):
        raise ConfigError(
            f"study.bids_dir is required when study.source is '{study['source']}' (raw BIDS "
            "with the events and participants.tsv)"
        )
    if study["source"] == "fmriprep" and not study.get("fmriprep_dir"):
        raise ConfigError("study.fmriprep_dir is required when study.source is 'fmriprep'")
    first = config["firstlevel"]
    conditions = first["conditions"]
    for name, expression in first["contrasts"].items():
        unknown = unknown_conditions(expression, conditions)
        if unknown:
            raise ConfigError(
                f"firstlevel.contrasts.{name} = '{expression}' uses unknown condition(s) "
                f"{unknown}; firstlevel.conditions are {sorted(conditions)}"
            )
    contrasts = set(first["contrasts"])
    group = config["group"]
    for name in group["onesample"]:
        if name not in contrasts:
            raise ConfigError(
                f"group.onesample names contrast '{name}', not one of firstlevel.contrasts "
                f"{sorted(contrasts)}"
            )
    for name, spec in group["regressions"].items():
        if spec["contrast"] not in contrasts:
            raise ConfigError(
                f"group.regressions.{name}.contrast '{spec['contrast']}' is not one of "
                f"firstlevel.contrasts {sorted(contrasts)}"
            )
    for name in group["overlap"]:
        if name not in group["regressions"]:
            raise ConfigError(
                f"group.overlap names '{name}', not one of group.regressions "
                f"{sorted(group['regressions'])}"
            )
    targets = {group["regressions"][name]["contrast"] for name in group["overlap"]}
    if len(targets) != 1:
        raise ConfigError(f"group.overlap regressions must share one contrast, got {sorted(targets)}")
