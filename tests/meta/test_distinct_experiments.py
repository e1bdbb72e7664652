"""Two categories whose NiMARE experiments would share an id, refused at parse time
(check_distinct_experiments), against the ids of NiMARE's own Datasets."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from nimare.dataset import Dataset
from nimare.io import convert_sleuth_to_dataset, convert_sleuth_to_dict

from mirrorflow.exceptions import ConfigError, InputDataError
from mirrorflow.meta.contrast import _check_groups
from mirrorflow.meta.inputs import category_experiments, check_distinct_experiments

# NiMARE's Datasets are the reference here (the workflow builds them too).
pytestmark = pytest.mark.filterwarnings("ignore:nimare.dataset.Dataset is deprecated")

SHIPPED = Path(__file__).resolve().parents[2] / "resources" / "meta"

# Two Sleuth files sharing two NiMARE ids under other names: 'Smith 2010-faces' (NiMARE
# strips the study and contrast) and 'Jones 2012-a-b' (study 'Jones 2012' with contrast
# 'a-b', study 'Jones 2012-a' with contrast 'b').
FIRST = """// Reference=MNI
// Smith 2010; faces
// Subjects=12
-46 -6 48
50 16 12

// Jones 2012; a-b
// Subjects=9
0 10 40

// Lee 2001; only here
// Subjects=15
1 2 3
"""
SECOND = """// Reference=Talairach
// Park 2005: other
// Subjects=20
10 10 10

// Smith 2010 ;  faces
// Subjects=14
-40 -8 44

// Jones 2012-a; b
// Subjects=11
2 12 38
4 14 36
"""


def _write(folder, name, text):
    path = folder / name
    path.write_text(text)
    return path


def _sleuth(path):
    return {"format": "sleuth", "path": str(path)}


@pytest.fixture
def overlapping(tmp_path):
    return _write(tmp_path, "first.txt", FIRST), _write(tmp_path, "second.txt", SECOND)


def test_shipped_sets_are_distinct():
    mimicry, contagion = SHIPPED / "mimicry.txt", SHIPPED / "contagion.txt"
    check_distinct_experiments({"mimicry": _sleuth(mimicry), "contagion": _sleuth(contagion)})
    ids = [{f"{study}-{contrast}" for study, content in convert_sleuth_to_dict(str(path)).items()
            for contrast in content["contrasts"]} for path in (mimicry, contagion)]
    assert len(ids[0]) == 48 and len(ids[1]) == 112 and not ids[0] & ids[1]


def test_overlapping_sleuth_files_are_refused_with_files_lines_and_ids(overlapping):
    first, second = overlapping
    with pytest.raises(InputDataError) as err:
        check_distinct_experiments({"mimicry": _sleuth(first), "contagion": _sleuth(second)})
    assert str(err.value) == (
        f"meta.categories 'mimicry' (Sleuth file {first}) and 'contagion' (Sleuth file "
        f"{second}) share 2 experiment id(s), which the ALE subtraction refuses (NiMARE names "
        "an experiment '<study>-<contrast>', splitting a Sleuth name into study and contrast "
        "at the first ';' or ':' after its year): 'Jones 2012-a-b' "
        f"({first} lines 7-9 ('Jones 2012; a-b'); {second} lines 10-13 ('Jones 2012-a; b')); "
        f"'Smith 2010-faces' ({first} lines 2-5 ('Smith 2010; faces'); {second} lines 6-8 "
        "('Smith 2010 ;  faces')); rename or remove them in one of the two categories"
    )


def test_reported_ids_are_those_nimare_datasets_share(overlapping):
    """The independent reference: NiMARE's own Datasets of the two files share exactly the
    reported ids, and the subtraction's own check refuses them."""
    first, second = overlapping
    reported = (set(category_experiments("a", _sleuth(first)))
                & set(category_experiments("b", _sleuth(second))))
    dset1 = convert_sleuth_to_dataset(str(first), target="mni152_2mm")
    dset2 = convert_sleuth_to_dataset(str(second), target="mni152_2mm")
    assert set(dset1.ids) == set(category_experiments("a", _sleuth(first)))
    assert set(dset1.ids) & set(dset2.ids) == reported == {"Smith 2010-faces", "Jones 2012-a-b"}
    with pytest.raises(ConfigError, match="share 2 experiment id"):
        _check_groups(dset1, dset2, 10)


def test_nimare_json_against_sleuth(tmp_path, overlapping):
    first, _ = overlapping
    entry = {"coords": {"space": "MNI", "x": [0.0], "y": [0.0], "z": [0.0]},
             "metadata": {"sample_sizes": [10]}}
    data = {"Lee 2001": {"contrasts": {"only here": entry, "other": entry}},
            "Kim 2003": {"contrasts": {"1": entry}}}
    path = tmp_path / "set.json"
    path.write_text(json.dumps(data))
    spec = {"format": "nimare", "path": str(path)}
    with pytest.raises(InputDataError) as err:
        check_distinct_experiments({"mimicry": _sleuth(first), "contagion": spec})
    assert (f"(NiMARE JSON file {path}) share 1 experiment id(s)" in str(err.value))
    assert (f"'Lee 2001-only here' ({first} lines 11-13 ('Lee 2001; only here'); {path} "
            "study 'Lee 2001', contrast 'only here')") in str(err.value)
    shared = set(Dataset(data, target="mni152_2mm").ids) & set(
        convert_sleuth_to_dataset(str(first), target="mni152_2mm").ids)
    assert shared == {"Lee 2001-only here"}


def test_database_ids(tmp_path):
    """Reference experiments are '<study id>-1' (NiMARE's Neurosynth conversion)."""
    one = {"format": "database", "ids": [9065511, 9084599]}
    with pytest.raises(ConfigError, match=r"'9084599-1' \(study id 9084599 of "
                       r"meta.categories.a.ids; study id 9084599 of meta.categories.b.ids\)"):
        check_distinct_experiments({"a": one, "b": {"format": "database", "ids": ["9084599"]}})
    sleuth = _write(tmp_path, "set.txt", "// Reference=MNI\n// 9065511; 1\n// Subjects=9\n"
                    "1 2 3\n")
    where = re.escape(f"'9065511-1' (study id 9065511 of meta.categories.a.ids; {sleuth} "
                      "lines 2-4 ('9065511; 1'))")
    with pytest.raises(InputDataError, match=where):
        check_distinct_experiments({"a": one, "b": _sleuth(sleuth)})
    check_distinct_experiments({"a": one, "b": {"format": "database", "ids": [1, 2]}})


def test_database_ids_match_the_reference(reference_subset):
    """The reference Dataset's ids of some study ids are '<id>-1', as assumed above."""
    from mirrorflow.meta.reference import load_reference

    dset = load_reference(reference_subset[0])
    studies = dset.metadata["study_id"].astype(str).tolist()[:5]
    chosen = dset.metadata.loc[dset.metadata["study_id"].astype(str).isin(studies), "id"]
    assert set(chosen) == set(category_experiments("a", {"format": "database", "ids": studies}))


def test_simulated_ids_need_the_number_of_experiments(tmp_path):
    entry = {"coords": {"space": "MNI", "x": [0.0], "y": [0.0], "z": [0.0]},
             "metadata": {"sample_sizes": [10]}}
    path = tmp_path / "set.json"
    path.write_text(json.dumps({"mimicry-02": {"contrasts": {"1": entry}}}))
    categories = {"mimicry": {"format": "simulate", "foci": []},
                  "contagion": {"format": "nimare", "path": str(path)}}
    check_distinct_experiments(categories)  # simulate ids unknown: left out
    check_distinct_experiments(categories, n_simulated=1)
    with pytest.raises(InputDataError, match=r"'mimicry-02-1' \(simulated study 'mimicry-02'"):
        check_distinct_experiments(categories, n_simulated=2)


def test_files_left_out_without_read_file(overlapping):
    first, second = overlapping
    check_distinct_experiments({"a": _sleuth(first), "b": _sleuth(second)}, read_file=False)


def test_check_does_not_import_nimare(overlapping):
    first, _ = overlapping
    code = ("import sys\nfrom mirrorflow.meta.inputs import check_distinct_experiments\n"
            f"categories = {{'a': {_sleuth(first)!r}, 'b': {_sleuth(SHIPPED / 'mimicry.txt')!r}}}"
            "\ncheck_distinct_experiments(categories)\nassert 'nimare' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)
