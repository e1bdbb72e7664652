"""Coordinate inputs: Sleuth and NiMARE JSON files checked line by line, Talairach
conversion by NiMARE, reference-database selections, and the shipped Sleuth sets."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mirrorflow.exceptions import ConfigError, InputDataError
from mirrorflow.meta.inputs import check_category, read_nimare_json, write_category
from mirrorflow.meta.sleuth import mni_bounds, read_sleuth

REPO = Path(__file__).resolve().parents[2]
NEUROSYNTH = REPO.parent / "shared" / "neurosynth"
SHIPPED = REPO / "resources" / "meta"

GOOD = """// Reference=MNI
// Smith et al., 2010; faces
// Subjects=12
-46 -6 48
50	16	12

// Jones et al., 2012: imitation
// Subjects=20
0 10 40
"""


def _write(tmp_path, text, name="set.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_sleuth_file(tmp_path):
    space, experiments = read_sleuth(_write(tmp_path, GOOD))
    assert space == "MNI"
    assert [e.subjects for e in experiments] == [12, 20]
    assert experiments[0].foci == [(-46.0, -6.0, 48.0), (50.0, 16.0, 12.0)]
    assert [e.line for e in experiments] == [2, 7]


# Each malformed case: (text, line reported, words of the problem).
MALFORMED = {
    "missing subjects line": (
        "// Reference=MNI\n// Smith et al., 2010; faces\n-46 -6 48\n", 2,
        "missing '// Subjects=N' line"),
    "non-numeric coordinate": (
        "// Reference=MNI\n// Smith 2010\n// Subjects=12\n-46 -6 48\n50 x 12\n", 5,
        "non-numeric coordinate"),
    "unknown reference space": (
        "// Reference=Colin27\n// Smith 2010\n// Subjects=12\n-46 -6 48\n", 1,
        "unknown reference space 'Colin27'"),
    "no reference line": (
        "// Smith 2010\n// Subjects=12\n-46 -6 48\n", 1, "expected '// Reference=MNI'"),
    "outside the template": (
        "// Reference=MNI\n// Smith 2010\n// Subjects=12\n-46 -6 48\n10 20 130\n", 5,
        "outside the MNI152 template's bounding box"),
    "two coordinates": (
        "// Reference=MNI\n// Smith 2010\n// Subjects=12\n-46 -6\n", 4,
        "needs 3 coordinates"),
    "non-integer sample size": (
        "// Reference=MNI\n// Smith 2010\n// Subjects=twelve\n-46 -6 48\n", 3,
        "sample size 'twelve' is not an integer"),
    "zero sample size": (
        "// Reference=MNI\n// Smith 2010\n// Subjects=0\n-46 -6 48\n", 3,
        "must be at least 1"),
    "experiment without foci": (
        "// Reference=MNI\n// Smith 2010\n// Subjects=12\n\n// Jones 2012\n// Subjects=9\n"
        "1 2 3\n", 2, "has no foci"),
    "repeated experiment name": (
        "// Reference=MNI\n// Smith 2010\n// Subjects=12\n1 2 3\n\n// Smith 2010\n"
        "// Subjects=9\n1 2 3\n", 6, "repeats the one on line 2"),
    "commas": (
        "// Reference=MNI\n// Smith 2010\n// Subjects=12\n-46, -6, 48\n", 4,
        "separated by spaces or tabs, not commas"),
    "focus before a header": (
        "// Reference=MNI\n1 2 3\n", 2, "found '1 2 3' before the first experiment header"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_sleuth_file_names_file_line_and_problem(case, tmp_path):
    text, line, problem = MALFORMED[case]
    path = _write(tmp_path, text)
    with pytest.raises(InputDataError) as err:
        read_sleuth(path)
    assert f"Sleuth file {path}, line {line}: " in str(err.value)
    assert problem in str(err.value)


def test_missing_and_empty_sleuth_files(tmp_path):
    with pytest.raises(InputDataError, match="nope.txt: file does not exist"):
        read_sleuth(tmp_path / "nope.txt")
    with pytest.raises(InputDataError, match="empty.txt: the file is empty"):
        read_sleuth(_write(tmp_path, "\n\n", "empty.txt"))


def test_talairach_focus_outside_after_conversion_is_refused(tmp_path):
    # z = 106 is inside the box (<= 108) in Talairach, outside after NiMARE's tal2mni.
    from nimare.utils import tal2mni

    assert tal2mni(np.array([[0.0, 0.0, 106.0]]))[0, 2] > mni_bounds()[1][2]
    path = _write(tmp_path, "// Reference=Talairach\n// A 2001\n// Subjects=9\n0 0 106\n")
    with pytest.raises(InputDataError, match=r"line 4: focus \(0.0, 0.0, 106.0\) \(MNI"):
        read_sleuth(path)


def test_template_bounds_are_nimare_template():
    from nimare.utils import get_template

    img = get_template("mni152_2mm", mask="brain")
    low, high = mni_bounds()
    np.testing.assert_array_equal(low, img.affine[:3, 3])
    np.testing.assert_array_equal(high, img.affine[:3, 3] + 2 * (np.array(img.shape) - 1))


def test_talairach_file_is_converted_by_nimare(tmp_path):
    """The normalised set keeps the Talairach foci; the Dataset NiMARE builds from it holds
    them in MNI, equal to NiMARE's tal2mni applied independently to the file's values."""
    from nimare.utils import tal2mni

    from mirrorflow.meta.ale import load_dataset

    text = GOOD.replace("Reference=MNI", "Reference=Talairach")
    path = _write(tmp_path, text)
    out = tmp_path / "set.json"
    meta = write_category(label="mimicry", spec={"format": "sleuth", "path": str(path)},
                          source=path, output_file=out, summary_file=tmp_path / "s.json",
                          assumed_sample_size=20)
    assert meta["Spaces"] == ["TAL"] and "tal2mni" in meta["Description"]
    dset = load_dataset(out)
    raw = np.array([[-46, -6, 48], [50, 16, 12], [0, 10, 40]], float)
    got = dset.coordinates.sort_values(["id", "x"])[["x", "y", "z"]].to_numpy()
    want = tal2mni(raw)
    np.testing.assert_allclose(np.sort(got, axis=0), np.sort(want, axis=0), atol=1e-6)
    assert not np.allclose(np.sort(got, axis=0), np.sort(raw, axis=0))
    assert sorted(dset.metadata["sample_sizes"].map(lambda s: s[0])) == [12, 20]


NIMARE_MALFORMED = {
    "missing sample sizes": ({"coords": {"space": "MNI", "x": [1], "y": [2], "z": [3]}},
                             "'metadata.sample_sizes' must be a list of positive integers"),
    "negative sample size": ({"coords": {"space": "MNI", "x": [1], "y": [2], "z": [3]},
                              "metadata": {"sample_sizes": [-3]}}, "positive integers"),
    "unknown space": ({"coords": {"space": "Colin", "x": [1], "y": [2], "z": [3]},
                       "metadata": {"sample_sizes": [9]}}, "unknown space 'Colin'"),
    # NiMARE's Dataset would leave these foci unconverted (a log warning only).
    "space in lower case": ({"coords": {"space": "tal", "x": [1], "y": [2], "z": [3]},
                             "metadata": {"sample_sizes": [9]}},
                            "unknown space 'tal'; NiMARE reads 'MNI', 'TAL' and 'Talairach' as"),
    "non-numeric": ({"coords": {"space": "MNI", "x": ["a"], "y": [2], "z": [3]},
                     "metadata": {"sample_sizes": [9]}}, "non-numeric coordinate"),
    "ragged": ({"coords": {"space": "MNI", "x": [1, 2], "y": [2], "z": [3]},
                "metadata": {"sample_sizes": [9]}}, "lists of one length"),
    "outside": ({"coords": {"space": "MNI", "x": [1], "y": [2], "z": [-90]},
                 "metadata": {"sample_sizes": [9]}}, "outside the MNI152 template"),
}


@pytest.mark.parametrize("case", sorted(NIMARE_MALFORMED))
def test_malformed_nimare_json_names_file_experiment_and_problem(case, tmp_path):
    entry, problem = NIMARE_MALFORMED[case]
    path = tmp_path / "set.json"
    path.write_text(json.dumps({"study1": {"contrasts": {"c1": entry}}}))
    with pytest.raises(InputDataError) as err:
        read_nimare_json(path)
    assert f"coordinate file {path}: study 'study1', contrast 'c1': " in str(err.value)
    assert problem in str(err.value)


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "set.json"
    path.write_text('{\n  "s": {\n    "contrasts": [,]\n  }\n}\n')
    with pytest.raises(InputDataError, match=r"set.json, line 3: not valid JSON"):
        read_nimare_json(path)


def test_category_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="format 'sleuth' needs 'path'"):
        check_category("mimicry", {"format": "sleuth"})
    with pytest.raises(ConfigError, match="format 'database' needs 'ids'"):
        check_category("mimicry", {"format": "database", "ids": []})
    with pytest.raises(ConfigError, match="choose from"):
        check_category("mimicry", {"format": "gingerale", "path": "x"})


def test_database_selection_by_study_ids(tmp_path, reference_subset):
    """Experiments of the reference database chosen by PubMed id, each with the assumed
    sample size; their foci equal the Neurosynth table's rows for those ids."""
    import pandas as pd

    reference, coords = reference_subset
    ids = sorted(coords["id"].unique())[:3]
    out = tmp_path / "db.json"
    meta = write_category(label="contagion", spec={"format": "database", "ids": ids},
                          source=reference, output_file=out, summary_file=tmp_path / "s.json",
                          assumed_sample_size=17)
    data = read_nimare_json(out)
    assert sorted(data) == sorted(str(i) for i in ids)
    assert meta["AssumedSampleSize"] == 17 and meta["NFoci"] == int(coords["id"].isin(ids).sum())
    sizes = {c["metadata"]["sample_sizes"][0] for s in data.values()
             for c in s["contrasts"].values()}
    assert sizes == {17}
    want = coords[coords["id"] == ids[0]][["x", "y", "z"]].to_numpy(float)
    entry = next(iter(data[str(ids[0])]["contrasts"].values()))["coords"]
    got = np.array([entry["x"], entry["y"], entry["z"]]).T
    np.testing.assert_allclose(np.sort(got, axis=0), np.sort(want, axis=0))
    with pytest.raises(InputDataError, match=r"1 study id\(s\) not found \(first: \['1'\]\)"):
        write_category(label="contagion", spec={"format": "database", "ids": [1, ids[0]]},
                       source=reference, output_file=tmp_path / "x.json",
                       summary_file=tmp_path / "x_s.json", assumed_sample_size=17)
    assert not (tmp_path / "x.json").exists()
    assert isinstance(pd.read_json(tmp_path / "s.json", typ="series"), pd.Series)


def test_shipped_sleuth_sets_are_valid_and_regenerate_from_neurosynth(tmp_path):
    """The default run's real coordinate sets: valid Sleuth files that the shipped script
    rebuilds byte for byte from the full Neurosynth v7 release in ../shared."""
    for name, n_experiments in (("mimicry", 48), ("contagion", 112)):
        space, experiments = read_sleuth(SHIPPED / f"{name}.txt")
        assert space == "MNI" and len(experiments) == n_experiments
        assert all(e.name.startswith("pmid-") for e in experiments)
    subprocess.run([sys.executable, str(SHIPPED / "make_sleuth_sets.py"), "--neurosynth",
                    str(NEUROSYNTH), "--output-dir", str(tmp_path)], check=True,
                   capture_output=True)
    for name in ("mimicry.txt", "contagion.txt", "studies.tsv"):
        assert (tmp_path / name).read_bytes() == (SHIPPED / name).read_bytes(), name
