import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from mirrorflow.exceptions import ConfigError
from mirrorflow.io.config import check_config

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture
def config():
    return yaml.safe_load((CONFIG / "config.yaml").read_text())


def test_default_config_passes_schema_and_checks(config):
    validate(config, str(CONFIG / "config.schema.yaml"))
    check_config(config)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("preproc", "fwhm"), -1, "-1 is less than the minimum of 0"),
        (("study", "source"), "fmriprp", "'fmriprp' is not one of"),
        (("study", "task"), "imitation task", "does not match"),
        (("group", "inference", "alpha"), 2, "greater than or equal to the maximum"),
    ],
)
def test_schema_refuses_bad_values(config, path, value, message):
    bad = copy.deepcopy(config)
    node = bad
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(WorkflowError, match=message):
        validate(bad, str(CONFIG / "config.schema.yaml"))


def test_schema_refuses_unknown_keys(config):
    bad = copy.deepcopy(config)
    bad["preproc"]["fwmh"] = 5
    with pytest.raises(WorkflowError, match="Additional properties are not allowed"):
        validate(bad, str(CONFIG / "config.schema.yaml"))


def test_contrast_with_unknown_condition(config):
    config["firstlevel"]["contrasts"]["bad"] = "imitate - smile"
    with pytest.raises(ConfigError, match=r"unknown condition\(s\) \['smile'\]"):
        check_config(config)


def test_regression_on_unknown_contrast(config):
    config["group"]["regressions"]["eq"]["contrast"] = "nothing"
    with pytest.raises(ConfigError, match="group.regressions.eq.contrast 'nothing'"):
        check_config(config)


def test_overlap_names_a_regression(config):
    config["group"]["overlap"] = ["eq", "age"]
    with pytest.raises(ConfigError, match="group.overlap names 'age'"):
        check_config(config)


def test_bids_source_needs_a_folder(config):
    config["study"]["source"] = "bids"
    with pytest.raises(ConfigError, match="study.bids_dir is required"):
        check_config(config)


def test_paired_model_on_unknown_contrast(config):
    config["group"]["paired"]["mismatchGtImitate"] = ["mismatch", "smile"]
    with pytest.raises(ConfigError, match=r"group.paired.mismatchGtImitate names contrast\(s\) \['smile'\]"):
        check_config(config)


def test_more_permutation_shards_than_blocks(config):
    config["group"]["inference"].update(method="permutation", n_perm=300, block=100, shards=4)
    with pytest.raises(ConfigError, match=r"shards \(4\) exceeds the number of permutation blocks"):
        check_config(config)


def test_group_models_follow_the_config(config):
    from mirrorflow.io.config import group_models

    models = group_models(config)
    assert models[("mismatchGtImitate", "paired")] == {
        "kind": "paired", "contrasts": ["mismatch", "imitate"], "label": "mismatchGtImitate"}
    assert models[("imitate", "eq")]["covariate"] == "eq"
    assert ("imitate", "onesample") in models


def test_meta_category_schema_and_reserved_labels(config):
    """A category needs what its format reads, and may not take another output's label."""
    bad = copy.deepcopy(config)
    bad["meta"]["categories"]["mimicry"] = {"format": "sleuth"}
    with pytest.raises(WorkflowError, match="'path' is a required property"):
        validate(bad, str(CONFIG / "config.schema.yaml"))
    bad = copy.deepcopy(config)
    bad["meta"]["categories"] = {"conjunction": bad["meta"]["categories"]["mimicry"],
                                 "contagion": bad["meta"]["categories"]["contagion"]}
    validate(bad, str(CONFIG / "config.schema.yaml"))
    with pytest.raises(ConfigError, match="meta.categories.conjunction: 'conjunction' names"):
        check_config(bad)


def test_index_labels_written_as_yaml_integers(config):
    """``runs: [1]``, ``filters: {echo: 2}`` and ``fmriprep_res: 2`` are what users write:
    the schema takes them and check_config makes them labels; a negative index or a
    subject label written as a number (its leading zeros lost) is refused."""
    study = config["study"]
    study.update(runs=[1, "02"], filters={"echo": 2, "acq": "mb"}, fmriprep_res=2,
                 fmriprep_cohort=1)
    validate(config, str(CONFIG / "config.schema.yaml"))
    check_config(config)
    assert (study["runs"], study["filters"], study["fmriprep_res"], study["fmriprep_cohort"]) \
        == (["1", "02"], {"echo": "2", "acq": "mb"}, "2", "1")
    for key, value in (("runs", [-1]), ("subjects", [1])):
        bad = copy.deepcopy(config)
        bad["study"][key] = value
        with pytest.raises(WorkflowError, match="study"):
            validate(bad, str(CONFIG / "config.schema.yaml"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("preproc:\n  fwhm: 6\n  resolution: 4\n  fwhm: 8\n",
         r"key 'preproc.fwhm' is written twice, on lines 2 and 4"),
        ("study: {task: a}\nstudy: {task: b}\n", r"key 'study' is written twice, on lines 1 and 2"),
        ("preproc:\n  fwhm: .nan\n", r", line 2: preproc.fwhm is .nan; every number"),
        ("meta:\n  ale: {alpha: -.Inf}\n", r", line 2: meta.ale.alpha is -.Inf"),
        ("macm:\n  seeds:\n    spheres:\n    - {xyz: [1, .inf, 3], radius: 6}\n",
         r", line 4: macm.seeds.spheres\[0\].xyz\[1\] is .inf"),
        ("preproc:\n  fwhm: 6\n   resolution: [4\n", r", line 3, column 14: not valid YAML"),
        ("preproc:\n\tfwhm: 6\n", r", line 2, column 1: not valid YAML .*'\\t'"),
        ("a: 1\n---\nb: 2\n", "not valid YAML"),
    ],
)
def test_config_file_read_strictly(tmp_path, text, message):
    from mirrorflow.io.config import check_config_file

    path = tmp_path / "my config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        check_config_file(path)
    assert str(err.value).startswith(f"config file {path}")


@pytest.mark.parametrize(
    "text",
    [
        "preproc: {fwhm: 6}\n",
        '{"preproc": {"fwhm": 6, "resolution": 4}}',  # JSON, as Snakemake also reads it
        "\ufeffpreproc: {fwhm: 6}\n",  # a byte-order mark
        "base: &b {fwhm: 6}\npreproc:\n  <<: *b\n  resolution: 4\n",  # anchors and merges
        "group: {inference: {alpha: 0.05}}\nstudy: {task: nan}\n",  # the string 'nan'
        "",
    ],
)
def test_config_file_valid(tmp_path, text):
    from mirrorflow.io.config import check_config_file

    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    check_config_file(path)
    check_config_file(CONFIG / "config.yaml")


def test_non_finite_value_in_merged_config(config):
    from mirrorflow.io.config import check_finite

    check_finite(config)
    config["meta"]["ale"]["early_stop"] = float("inf")
    with pytest.raises(ConfigError, match="config key meta.ale.early_stop is inf"):
        check_finite(config)


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("bids", "is the study.bids_dir folder"),
        ("bids/", "is the study.bids_dir folder"),
        ("link", "is the study.bids_dir folder"),  # a symbolic link to the dataset
        (".", "contains the study.bids_dir folder"),
        ("bids/sub-01/results", "lies inside the study.bids_dir folder"),
        ("bids/derivatives", "is the study.fmriprep_dir folder"),
        ("bids/derivatives/fmriprep/mirrorflow", "lies inside the study.fmriprep_dir"),
        ("bids/derivatives/mirrorflow", None),
        ("results", None),
        ("bids-results", None),  # a sibling whose name starts like the dataset's
    ],
)
def test_output_dir_outside_input_datasets(tmp_path, monkeypatch, out, message):
    from mirrorflow.io.config import check_output_dir

    (tmp_path / "bids" / "derivatives" / "fmriprep").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "bids")
    monkeypatch.chdir(tmp_path)
    datasets = {"study.bids_dir": "bids", "study.fmriprep_dir": "bids/derivatives/fmriprep",
                "study.preprocessed.bold": None}
    if out == "bids/derivatives":
        datasets["study.fmriprep_dir"] = "bids/derivatives"
    if message is None:
        check_output_dir(out, datasets)
        return
    with pytest.raises(ConfigError, match=rf"output_dir {out} {message}.*choose a folder"):
        check_output_dir(out, datasets)


def test_permutations_must_reach_alpha(config):
    config["group"]["inference"].update(method="permutation", n_perm=18, alpha=0.05)
    with pytest.raises(ConfigError, match=r"n_perm \(18\) cannot give p_FWE <= .*n_perm >= 19"):
        check_config(config)
    config["group"]["inference"]["n_perm"] = 19  # the smallest p is 1/20 = alpha
    check_config(config)


def test_simulated_sample_sizes_in_order(config):
    config["meta"]["simulate"]["sample_size"] = [30, 10]
    with pytest.raises(ConfigError, match=r"meta.simulate.sample_size \[30, 10\]"):
        check_config(config)


def test_config_files_checked_from_the_command_line(tmp_path):
    """What Snakemake cannot name in a --configfile (a syntax error's file and line), the
    module's command line does."""
    import subprocess
    import sys

    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("preproc: {fwhm: 6}\n")
    bad.write_text("preproc:\n  fwhm: [6\n")
    result = subprocess.run([sys.executable, "-m", "mirrorflow.io.config", good, bad],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert f"config file {good}: read" in result.stdout
    assert f"config file {bad}, line 3, column 1: not valid YAML" in result.stderr


def test_bundled_files_are_found_in_the_workflow_folder(tmp_path, monkeypatch):
    """From another working folder (a module's), the shipped Sleuth sets and Neurosynth
    copy resolve to the workflow's folder; a user's own file of the same relative name,
    an absolute path and a path nowhere are left as written."""
    from mirrorflow.io.config import resolve_bundled

    repo = Path(__file__).resolve().parents[2]
    shipped = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    user = tmp_path / "user"
    (user / "resources" / "meta").mkdir(parents=True)
    (user / "resources" / "meta" / "contagion.txt").write_text("// Reference=MNI\n")
    monkeypatch.chdir(user)
    config = copy.deepcopy(shipped)
    config["meta"]["categories"]["extra"] = {"format": "sleuth", "path": "nowhere.txt"}
    resolved = resolve_bundled(config, repo)
    assert resolved == {
        "meta.categories.mimicry.path": str(repo / "resources" / "meta" / "mimicry.txt"),
        "macm.reference_dir": str(repo / "resources" / "neurosynth"),
    }
    assert config["meta"]["categories"]["contagion"]["path"] == "resources/meta/contagion.txt"
    assert config["meta"]["categories"]["extra"]["path"] == "nowhere.txt"
    # In the workflow's own folder nothing changes.
    monkeypatch.chdir(repo)
    config = copy.deepcopy(shipped)
    assert resolve_bundled(config, repo) == {} and config == shipped
