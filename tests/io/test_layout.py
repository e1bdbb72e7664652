import pytest

from mirrorflow.exceptions import ConfigError, InputDataError
from mirrorflow.io.layout import index_bids


def test_index_finds_every_subject_and_run(small_study):
    index = index_bids(small_study["bids"], task="imitation")
    assert index == {f"{i:02d}": ["1"] for i in range(1, 5)}


def test_index_selects_subjects(small_study):
    assert list(index_bids(small_study["bids"], task="imitation", subjects=["03"])) == ["03"]


def test_index_subject_absent(small_study):
    with pytest.raises(ConfigError, match=r"subjects \['09'\] are selected in config but absent"):
        index_bids(small_study["bids"], task="imitation", subjects=["01", "09"])


def test_index_refuses_path_labels(small_study):
    with pytest.raises(ConfigError, match="not a valid BIDS label"):
        index_bids(small_study["bids"], task="imitation", subjects=["../01"])


def test_index_unknown_task(small_study):
    with pytest.raises(InputDataError, match="no task-rest BOLD runs"):
        index_bids(small_study["bids"], task="rest")


def test_index_not_bids(tmp_path):
    with pytest.raises(InputDataError, match="not a BIDS dataset"):
        index_bids(tmp_path, task="imitation")
