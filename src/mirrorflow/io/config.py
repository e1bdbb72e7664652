"""Cross-field checks of the configuration, run at parse time after the schema."""

from __future__ import annotations

import math
import re
from pathlib import Path

import yaml

from mirrorflow.exceptions import ConfigError

__all__ = [
    "RESERVED_META_LABELS",
    "check_config",
    "check_config_file",
    "check_finite",
    "check_output_dir",
    "group_models",
    "inference_settings",
    "resolve_bundled",
    "unknown_conditions",
]

#: Output labels of the meta-analysis that a category may not take (meta-<label>_...).
RESERVED_META_LABELS = frozenset({"conjunction", "contrast", "macm"})


#: The ``group.inference`` keys that each step of each method reads: a rule gets only
#: these as params, so changing another key (the height settings under permutation, say)
#: reruns nothing. ``shards`` decides the jobs, not the result, but the null rule needs it.
INFERENCE_KEYS = {
    ("permutation", "null"): ("method", "statistic", "n_perm", "block", "seed",
                              "cluster_forming_p", "shards"),
    ("permutation", "threshold"): ("method", "statistic", "alpha", "n_perm", "block",
                                   "seed", "cluster_forming_p"),
    ("cluster", "threshold"): ("method", "alpha", "cluster_forming_p"),
    ("height", "threshold"): ("method", "alpha", "height_control", "cluster_threshold"),
}


def inference_settings(inference: dict, step: str) -> dict:
    """The keys of ``group.inference`` that ``step`` (``null`` or ``threshold``) of its
    method reads (:data:`INFERENCE_KEYS`)."""
    return {key: inference[key] for key in INFERENCE_KEYS[(inference["method"], step)]}


def unknown_conditions(expression: str, conditions) -> list[str]:
    """Names used in a contrast ``expression`` that are not among ``conditions``, sorted."""
    return sorted(set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expression)) - set(conditions))


#: How YAML 1.1 writes numbers that are not finite (PyYAML's float resolver).
_NON_FINITE = re.compile(r"^[-+]?\.(?:inf|Inf|INF|nan|NaN|NAN)$")


def check_config_file(path) -> None:
    """Read a config file strictly; raise :class:`ConfigError` naming the file and the line.

    Snakemake reads config files with PyYAML, which silently keeps the later of two equal
    keys, takes ``.nan`` and ``.inf`` as numbers, and reports a syntax error without the
    file or the line. Here a syntax error, a key written twice in one mapping (both lines)
    and a number that is not finite are each one error. JSON is read as YAML (a subset).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {path}: not UTF-8 text ({err})") from err
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(filter(None, [err.context, err.problem]))
        raise ConfigError(f"config file {path}{where}: not valid YAML ({problem})") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path}: not valid YAML ({err})") from err
    if root is not None:
        _check_node(path, root, [])


def _key_name(keys: list[str]) -> str:
    return ".".join(keys) or "(top level)"


def _item_keys(keys, index: int) -> list[str]:
    """The key path of item ``index`` of the list at ``keys``: ``a.b[2]``."""
    return [*keys[:-1], f"{keys[-1] if keys else ''}[{index}]"]


def _check_node(path: Path, node, keys: list[str]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key == "<<":  # a merge key may repeat
                continue
            if key in seen:
                raise ConfigError(
                    f"config file {path}: key '{_key_name([*keys, key])}' is written twice, "
                    f"on lines {seen[key]} and {line} (YAML would keep the later silently); "
                    "keep one"
                )
            seen[key] = line
            _check_node(path, value, [*keys, key])
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_node(path, item, _item_keys(keys, index))
    elif (isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:float"
          and _NON_FINITE.match(node.value)):
        raise ConfigError(
            f"config file {path}, line {node.start_mark.line + 1}: {_key_name(keys)} is "
            f"{node.value}; every number in the config must be finite"
        )


def check_finite(config, keys: tuple | list = ()) -> None:
    """Raise :class:`ConfigError` for a number in ``config`` (nested dicts and lists) that
    is not finite, naming its key: values from ``--config`` or a file read elsewhere."""
    if isinstance(config, dict):
        for key, value in config.items():
            check_finite(value, (*keys, str(key)))
    elif isinstance(config, (list, tuple)):
        for index, value in enumerate(config):
            check_finite(value, _item_keys(keys, index))
    elif isinstance(config, float) and not math.isfinite(config):
        raise ConfigError(
            f"config key {_key_name(list(keys))} is {config}; every number in the config must "
            "be finite"
        )


def check_output_dir(output_dir, datasets: dict[str, str | None]) -> None:
    """Refuse an ``output_dir`` that would write into an input dataset.

    ``datasets`` maps config keys to the folders they name (None: not used). The output
    folder may not be such a folder, contain one, or lie inside one other than in its
    ``derivatives/`` folder (where BIDS puts derived data). Symbolic links are followed.
    """
    out = Path(output_dir).expanduser().resolve()
    for key, folder in datasets.items():
        if not folder:
            continue
        data = Path(folder).expanduser().resolve()
        suggestion = (f"choose a folder outside it, or one inside its derivatives/ folder "
                      f"(e.g. {data / 'derivatives' / 'mirrorflow'})")
        if out == data:
            problem = f"is the {key} folder"
        elif data.is_relative_to(out):
            problem = f"contains the {key} folder {data}"
        elif out.is_relative_to(data) and not out.is_relative_to(data / "derivatives"):
            problem = f"lies inside the {key} folder {data}, outside its derivatives/ folder"
        else:
            continue
        raise ConfigError(
            f"output_dir {output_dir} {problem}: the workflow would write its derivatives, "
            f"logs and work folder into the input dataset; {suggestion}"
        )


def resolve_bundled(config: dict, workflow_dir) -> dict[str, str]:
    """Find the files the workflow ships (the default Sleuth sets, the compact Neurosynth
    copy) when it runs from another folder: as a Snakemake module, or with
    ``--snakefile``.

    A relative path in ``meta.categories.<label>.path`` or ``macm.reference_dir`` is read
    from the working folder, as Snakemake reads every relative path; only where the
    working folder has no such file or folder and ``workflow_dir`` (the workflow's own
    folder) has one does it become that absolute path. ``config`` is changed in place;
    returns ``{key: path}`` of what was resolved."""
    def resolve(path):
        if not path or Path(path).is_absolute() or Path(path).exists():
            return None
        bundled = Path(workflow_dir, path)
        return str(bundled) if bundled.exists() else None

    resolved = {}
    places = [(f"meta.categories.{label}.path", spec, "path")
              for label, spec in config["meta"]["categories"].items()]
    places.append(("macm.reference_dir", config["macm"], "reference_dir"))
    for key, holder, name in places:
        found = resolve(holder.get(name))
        if found:
            holder[name] = resolved[key] = found
    return resolved


def check_config(config: dict) -> None:
    """Raise :class:`ConfigError` for references between keys that the schema cannot check.

    BIDS labels that YAML may read as integers (``runs: [1]``, ``filters: {echo: 2}``,
    ``fmriprep_res: 2``) are made strings here, in place."""
    study = config["study"]
    study["runs"] = [str(run) for run in study["runs"]]
    study["filters"] = {key: str(value) for key, value in study["filters"].items()}
    for key in ("fmriprep_cohort", "fmriprep_res"):
        if study.get(key) is not None:
            study[key] = str(study[key])
    if study["source"] != "simulate" and not study.get("bids_dir"):
        raise ConfigError(
            f"study.bids_dir is required when study.source is '{study['source']}' (raw BIDS "
            "with the events and participants.tsv)"
        )
    if study["source"] == "fmriprep" and not study.get("fmriprep_dir"):
        raise ConfigError("study.fmriprep_dir is required when study.source is 'fmriprep'")
    if study["source"] == "preprocessed" and not study["preprocessed"].get("bold"):
        raise ConfigError("study.preprocessed.bold (a file pattern such as "
                          "/data/spm/sub-{sub}/func/swrsub-{sub}_task-{task}_bold.nii) is "
                          "required when study.source is 'preprocessed'")
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
    for name, pair in group.get("paired", {}).items():
        unknown = [c for c in pair if c not in contrasts]
        if unknown:
            raise ConfigError(
                f"group.paired.{name} names contrast(s) {unknown}, not among "
                f"firstlevel.contrasts {sorted(contrasts)}"
            )
        if pair[0] == pair[1]:
            raise ConfigError(f"group.paired.{name} compares '{pair[0]}' with itself")
    for name in ("onesample", "paired"):
        if name in group["regressions"]:
            raise ConfigError(f"group.regressions.{name}: '{name}' is a reserved model name")
    for name, spec in group["regressions"].items():
        if spec["covariate"] in spec.get("nuisance", []):
            raise ConfigError(
                f"group.regressions.{name}: covariate '{spec['covariate']}' is also a "
                "nuisance column"
            )
    inference = group["inference"]
    if inference["method"] == "permutation" and inference["shards"] > -(
        -inference["n_perm"] // inference["block"]
    ):
        raise ConfigError(
            f"group.inference.shards ({inference['shards']}) exceeds the number of "
            f"permutation blocks (n_perm {inference['n_perm']} / block {inference['block']})"
        )
    if inference["method"] == "permutation" and (inference["n_perm"] + 1) * inference["alpha"] < 1:
        raise ConfigError(
            f"group.inference.n_perm ({inference['n_perm']}) cannot give p_FWE <= "
            f"group.inference.alpha ({inference['alpha']}): the smallest attainable p is "
            f"1/(n_perm + 1); use n_perm >= {math.ceil(1 / inference['alpha']) - 1}"
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
    _check_monte_carlo(config)
    for label in config["meta"]["categories"]:
        if label in RESERVED_META_LABELS:
            raise ConfigError(
                f"meta.categories.{label}: '{label}' names another meta-analysis output "
                f"(reserved: {sorted(RESERVED_META_LABELS)})"
            )


def group_models(config: dict) -> dict[tuple[str, str], dict]:
    """Every group model of the config, keyed by (contrast label, model label) as in the
    output file names: ``kind`` (onesample, paired, regression), ``contrasts`` (the
    first-level contrasts whose maps enter it, in order), ``label`` (the paired model's
    name), ``covariate`` and ``nuisance`` (regressions)."""
    group = config["group"]
    models = {}
    for contrast in group["onesample"]:
        models[(contrast, "onesample")] = {"kind": "onesample", "contrasts": [contrast]}
    for name, pair in group.get("paired", {}).items():
        models[(name, "paired")] = {"kind": "paired", "contrasts": list(pair), "label": name}
    for name, spec in group["regressions"].items():
        models[(spec["contrast"], name)] = {
            "kind": "regression",
            "contrasts": [spec["contrast"]],
            "covariate": spec["covariate"],
            "nuisance": list(spec.get("nuisance", [])),
        }
    return models


def _check_monte_carlo(config: dict) -> None:
    """The meta-analysis nulls: enough iterations for their p thresholds, and no more
    shards than blocks of 100 iterations (mirrorflow.meta.null.BLOCK_SIZE)."""
    from mirrorflow.shards import n_blocks

    ale, contrast, macm = config["meta"]["ale"], config["meta"]["contrast"], config["macm"]
    for key, section, alpha in (("meta.ale", ale, ale["alpha"]), ("macm", macm, macm["alpha"])):
        if section["n_iters"] * alpha < 1:
            raise ConfigError(
                f"{key}.n_iters ({section['n_iters']}) cannot give p_FWE < {key}.alpha "
                f"({alpha}): the smallest attainable p is 1/n_iters"
            )
    if contrast["n_iters"] * contrast["voxel_p"] <= 1:
        raise ConfigError(
            f"meta.contrast.n_iters ({contrast['n_iters']}) cannot give p < voxel_p "
            f"({contrast['voxel_p']}): the smallest attainable p is 1/n_iters"
        )
    sizes = config["meta"].get("simulate", {}).get("sample_size")
    if sizes and sizes[0] > sizes[-1]:
        raise ConfigError(f"meta.simulate.sample_size {sizes}: the smallest sample size "
                          "comes first ([low, high])")
    for key, section in (("meta.ale", ale), ("meta.contrast", contrast), ("macm", macm)):
        if section["shards"] > n_blocks(section["n_iters"], 100):
            raise ConfigError(
                f"{key}.shards ({section['shards']}) exceeds the blocks of 100 iterations "
                f"of {key}.n_iters ({section['n_iters']})"
            )


def main(argv=None) -> int:
    """``python -m mirrorflow.io.config FILE ...``: read config files strictly, as the
    workflow does, and print each problem with its file and line. Snakemake reads a file
    given with ``--configfile`` before the workflow's code runs, and reports a syntax error
    in it without the file or the line: this names them."""
    import sys

    problems = 0
    for name in sys.argv[1:] if argv is None else argv:
        try:
            check_config_file(name)
        except ConfigError as err:
            print(err, file=sys.stderr)
            problems += 1
        else:
            print(f"config file {name}: read")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
