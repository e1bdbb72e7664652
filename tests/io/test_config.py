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
