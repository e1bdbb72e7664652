"""read_sleuth against NiMARE's own Sleuth reader: a file passes the parse-time check exactly
when :func:`nimare.io.convert_sleuth_to_dict` reads it (same experiments, sample sizes and
foci), except for the deliberate checks of mirrorflow.meta.sleuth's docstring."""

import codecs
import locale
import random
import subprocess
import sys

import pytest
from nimare.io import convert_sleuth_to_dict

from mirrorflow.exceptions import InputDataError
from mirrorflow.meta.sleuth import SLEUTH_SPACES, read_sleuth, study_contrast

UTF8 = codecs.lookup(locale.getpreferredencoding(False)).name == "utf-8"

REF = "// Reference=MNI"
NAME = "// Smith et al., 2010; faces"
SUBJ = "// Subjects=12"
FOCI = "-46 -6 48\n50\t16\t12"


def doc(*lines):
    """A Sleuth text from its lines, LF line ends."""
    return "\n".join(lines) + "\n"


def body(reference=REF, name=NAME, subjects=SUBJ, foci=FOCI):
    return doc(reference, name, subjects, foci)


# Each variant: (file content, None if both readers accept it, else (line, what the message
# says, deliberate)): deliberate refusals are files NiMARE reads that read_sleuth refuses on
# purpose (module docstring); the others NiMARE refuses too.
def refused(line, found):
    return line, found, False


def deliberate(line, found):
    return line, found, True


CORPUS = {
    # line ends and encoding
    "lf": (body(), None),
    "crlf": (body().replace("\n", "\r\n"), None),
    "cr": (body().replace("\n", "\r"), None),
    "lf-cr-pairs": (body().replace("\n", "\n\r"), None),
    "mixed-line-ends": (doc(REF, NAME) + SUBJ + "\r\n-46 -6 48\r50 16 12", None),
    "no-final-line-end": (body().rstrip("\n"), None),
    "form-feed-is-no-line-end": (body(foci="-46 -6 48\x0c50 16 12"),
                                 refused(4, "got 6: '-46 -6 48\\x0c50 16 12'")),
    "line-separator-is-no-line-end": (body(foci="-46 -6 48\u202850 16 12"),
                                      refused(4, "got 6")),
    "utf8-bom": ("\ufeff" + body(), refused(1, "found a UTF-8 byte-order mark")),
    "utf8-bom-then-blank-line": ("\ufeff\n" + body(), refused(1, "UTF-8 byte-order mark")),
    "utf16-with-bom": (body().encode("utf-16"), refused(1, "found a UTF-16 byte-order mark")),
    "utf8-name": (body(name="// Müller & Gómez, 2010; faces"), None),
    "latin1-name": (body(name="// Muller 2010; faces").encode().replace(b"Muller", b"M\xfcller"),
                    None if not UTF8 else refused(2, "found byte 0xfc")),
    "blank-and-whitespace-lines": (doc("", " \t", REF, "", NAME, " ", SUBJ, "\t", FOCI, ""),
                                   None),
    "trailing-whitespace": (doc(REF + " \t", NAME + "\t ", SUBJ + "  ", "1 2 3 \t"), None),
    # the Reference line: NiMARE removes its spaces and cuts '//Reference=', case and all
    "reference-lower-keyword": (body(reference="// reference=MNI"),
                                refused(1, "found '// reference=MNI'; NiMARE reads the keyword")),
    "reference-upper-keyword": (body(reference="// REFERENCE=MNI"),
                                refused(1, "found '// REFERENCE=MNI'")),
    "reference-lower-space": (body(reference="// Reference=mni"),
                              refused(1, "found '// Reference=mni'; NiMARE reads the space")),
    "reference-TAL": (body(reference="// Reference=TAL"), None),
    "reference-Talairach": (body(reference="// Reference=Talairach"), None),
    "reference-Tal": (body(reference="// Reference=Tal"), refused(1, "'// Reference=TAL'")),
    "reference-TALAIRACH": (body(reference="// Reference=TALAIRACH"),
                            refused(1, "'// Reference=Talairach'")),
    "reference-no-space": (body(reference="//Reference=MNI"), None),
    "reference-spaces-everywhere": (body(reference="  //  Reference = M N I"), None),
    "reference-space-name-alone": (body(reference="MNI"), None),
    "reference-leading-tab": (body(reference="\t// Reference=MNI"),
                              refused(1, "not its tabs or other whitespace")),
    "reference-tab-after-slashes": (body(reference="//\tReference=MNI"),
                                    refused(1, "found '//\\tReference=MNI'")),
    "reference-tab-before-space": (body(reference="// Reference=\tMNI"), refused(1, "tabs")),
    "reference-colon": (body(reference="// Reference: MNI"),
                        refused(1, "expected '// Reference=MNI'")),
    "reference-unknown-space": (body(reference="// Reference=MNI152"),
                                refused(1, "unknown reference space 'MNI152'")),
    "reference-missing": (doc(NAME, SUBJ, FOCI), refused(1, "found '// Smith et al., 2010;")),
    "second-reference-line": (doc(REF, NAME, SUBJ, FOCI, REF, "// Jones 2012", SUBJ, FOCI),
                              deliberate(6, "a second Reference line")),
    # the sample size line: the header's last line, spaces removed, '//Subjects=' cut
    "subjects-lower-keyword": (body(subjects="// subjects=12"),
                               refused(3, "found '// subjects=12'; NiMARE reads the keyword")),
    "subjects-upper-keyword": (body(subjects="// SUBJECTS=12"), refused(3, "'// Subjects=12'")),
    "subjects-no-space": (body(subjects="//Subjects=12"), None),
    "subjects-spaces-around-equals": (body(subjects="// Subjects = 12"), None),
    "subjects-tab-before-number": (body(subjects="// Subjects=\t12"), None),
    "subjects-tab-after-slashes": (body(subjects="//\tSubjects=12"),
                                   refused(3, "found '//\\tSubjects=12'")),
    "subjects-colon": (body(subjects="// Subjects: 12"),
                       refused(3, "missing '// Subjects=N' line")),
    "subjects-decimal": (body(subjects="// Subjects=12.0"),
                         refused(3, "sample size '12.0' is not an integer")),
    "subjects-with-comment": (body(subjects="// Subjects=12 (8 female)"),
                              refused(3, "sample size '12(8female)' is not an integer")),
    "subjects-python-int-spelling": (body(subjects="// Subjects=+1_2"), None),
    "subjects-zero": (body(subjects="// Subjects=0"), deliberate(3, "must be at least 1")),
    "subjects-negative": (body(subjects="// Subjects=-3"), deliberate(3, "must be at least 1")),
    "subjects-indented": (body(subjects="  // Subjects=12"),
                          refused(3, "found '  // Subjects=12': NiMARE reads a header line")),
    "subjects-inside-name": (body(name="// Smith 2010; 12 Subjects with ASD"), None),
    "subjects-only-in-name": (doc(REF, "// Smith 2010; Subjects with ASD", FOCI),
                              refused(2, "found '// Smith 2010; Subjects with ASD'")),
    "subjects-line-before-name": (doc(REF, SUBJ, NAME, FOCI),
                                  refused(3, "must be the last header line")),
    "subjects-line-twice-in-header": (doc(REF, NAME, SUBJ, "// Jones 2012", SUBJ, FOCI),
                                      deliberate(2, "has no foci: its sample size line")),
    "subjects-lower-inside-header": (doc(REF, NAME, "// subjects=12", "// more", SUBJ, FOCI),
                                     deliberate(2, "NiMARE would read one experiment")),
    "no-name-line": (doc(REF, SUBJ, FOCI), deliberate(2, "without an experiment name")),
    "empty-name-line": (doc(REF, "//", SUBJ, FOCI), deliberate(3, "NiMARE would name")),
    # names: NiMARE's split into study and contrast, and its id <study>-<contrast>
    "name-two-lines": (doc(REF, "// Smith et al., 2010", "// faces > houses", SUBJ, FOCI), None),
    "name-tab-after-slashes": (body(name="//\tSmith 2010; faces"), None),
    "name-with-url": (body(name="// Smith 2010 http://x.org; faces"), None),
    "name-three-slashes": (body(name="/// Smith 2010"), None),
    "name-colon-before-year": (body(name="// Smith: Faces (2010); happy"), None),
    "name-without-year": (body(name="// Smith; a: b"), None),
    "name-repeated": (doc(REF, NAME, SUBJ, FOCI, NAME, SUBJ, FOCI),
                      deliberate(6, "repeats the one on line 2")),
    "names-with-one-id": (doc(REF, NAME, SUBJ, FOCI, "// Smith et al., 2010 ;faces", SUBJ,
                              FOCI), deliberate(6, "has NiMARE's id 'Smith et al., 2010-faces'")),
    "names-joined-into-one-id": (doc(REF, "// Smith 2010; a-b", SUBJ, FOCI,
                                     "// Smith 2010-a; b", SUBJ, FOCI),
                                 deliberate(6, "has NiMARE's id 'Smith 2010-a-b'")),
    # foci
    "foci-tabs-and-indent": (body(foci="  -46\t-6 \t48\n\t50  16\t12"), None),
    "foci-no-break-space": (body(foci="1\xa02 3"), None),
    "foci-python-float-spellings": (body(foci="1_0 +2. .5e1"), None),
    "foci-commas": (body(foci="-46, -6, 48"), refused(4, "not commas")),
    "foci-two-values": (body(foci="-46 -6"), refused(4, "got 2: '-46 -6'")),
    "foci-four-values": (body(foci="-46 -6 48 1"), refused(4, "got 4")),
    "foci-not-a-number": (body(foci="-46 x 48"), refused(4, "non-numeric coordinate")),
    "foci-nan": (body(foci="nan 1 2"), deliberate(4, "non-finite coordinate in 'nan 1 2'")),
    "foci-overflow": (body(foci="1e400 1 2"), deliberate(4, "non-finite coordinate")),
    "foci-blank-lines-inside": (body(foci="1 2 3\n\n4 5 6\n \n7 8 9"), None),
    "experiments-without-blank-line": (doc(REF, NAME, SUBJ, FOCI, "// Jones 2012", SUBJ, FOCI),
                                       None),
    "focus-before-header": (doc(REF, "1 2 3", NAME, SUBJ, FOCI),
                            deliberate(2, "found '1 2 3' before the first experiment header")),
    "indented-header-before-header": (doc(REF, " // x", NAME, SUBJ, FOCI),
                                      deliberate(2, "NiMARE would skip it")),
    "comment-after-foci": (doc(REF, NAME, SUBJ, FOCI, "# table 2"), refused(6, "'# table 2'")),
    "header-line-after-foci": (doc(REF, NAME, SUBJ, FOCI, "// table 2"),
                               refused(6, "found '// table 2'")),
    "indented-header-after-foci": (doc(REF, NAME, SUBJ, FOCI, "  // Jones 2012", SUBJ, FOCI),
                                   refused(6, "found '  // Jones 2012'")),
    "last-experiment-without-foci": (doc(REF, NAME, SUBJ, FOCI, "// Jones 2012", SUBJ),
                                     refused(6, "experiment 'Jones 2012' has no foci")),
    "only-reference-line": (doc(REF), deliberate(1, "no experiment after the Reference line")),
    "empty-file": ("", refused(None, "the file is empty")),
    "whitespace-only-file": (" \n\t\r\n", refused(None, "the file is empty")),
}


def _write(tmp_path, content, name="set.txt"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def _nimare(path):
    """NiMARE's reading, or None where it refuses the file."""
    try:
        data = convert_sleuth_to_dict(str(path))
    except Exception:  # NiMARE raises ValueError, IndexError, UnicodeDecodeError
        return None
    return {
        f"{study}-{contrast}": (SLEUTH_SPACES[entry["coords"]["space"]],
                                entry["metadata"]["sample_sizes"][0],
                                list(zip(*(entry["coords"][axis] for axis in "xyz"))))
        for study, content in data.items() for contrast, entry in content["contrasts"].items()
    }


def _ours(space, experiments):
    return {e.nimare_id: (space, e.subjects, e.foci) for e in experiments}


def test_corpus_is_large_and_covers_every_outcome():
    outcomes = [None if r is None else r[2] for _, r in CORPUS.values()]
    assert len(CORPUS) >= 25
    assert {None, True, False} <= set(outcomes)


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_read_sleuth_accepts_what_nimare_accepts(case, tmp_path):
    content, refusal = CORPUS[case]
    path = _write(tmp_path, content)
    theirs = _nimare(path)
    if refusal is None:
        assert theirs is not None, "NiMARE refuses it"
        space, experiments = read_sleuth(path, check_bounds=False)
        assert _ours(space, experiments) == theirs
        assert len(experiments) == len(theirs)
        return
    line, found, on_purpose = refusal
    assert (theirs is not None) == on_purpose, "NiMARE accepts it" if theirs else "NiMARE refuses"
    with pytest.raises(InputDataError) as err:
        read_sleuth(path, check_bounds=False)
    where = f"Sleuth file {path}" + (f", line {line}: " if line else ": ")
    assert str(err.value).startswith(where), str(err.value)
    assert found in str(err.value)


# Refusals and their whole message: the file, the line, what was found and what to write.
MESSAGES = {
    "reference keyword": (
        body(reference="// reference=MNI"),
        "line 1: found '// reference=MNI'; NiMARE reads the keyword as written: "
        "'// Reference=MNI'"),
    "reference space": (
        body(reference="// Reference=Tal"),
        "line 1: found '// Reference=Tal'; NiMARE reads the space as written (MNI, TAL or "
        "Talairach): '// Reference=TAL'"),
    "reference tab": (
        body(reference="//\tReference = MNI"),
        "line 1: found '//\\tReference = MNI'; NiMARE removes the spaces of the line, not its "
        "tabs or other whitespace: '// Reference=MNI'"),
    "byte-order mark": (
        "\ufeff" + body(),
        "line 1: found a UTF-8 byte-order mark at the start of the file; NiMARE reads it as "
        "part of the Reference line and refuses the file: save the file without BOM (UTF-8)"),
    "subjects keyword": (
        body(subjects="// subjects = 12").replace("\n", "\r\n"),
        "line 3: found '// subjects = 12'; NiMARE reads the keyword as written: "
        "'// Subjects=12'"),
    "subjects indented": (
        doc(REF, "", NAME, "\t// Subjects=12", FOCI),
        "line 4: found '\\t// Subjects=12': NiMARE reads a header line only when '//' starts "
        "it, and reads this one as a focus; remove the whitespace before '//'"),
    "subjects missing": (
        doc(REF, "// Smith 2010; 12 Subjects", FOCI),
        "line 2: missing '// Subjects=N' line: the last line of an experiment's header ('//' "
        "lines) gives its sample size, found '// Smith 2010; 12 Subjects'"),
    "two experiments as one": (
        doc(REF, NAME, SUBJ, "", "// Jones 2012", "// Subjects=9", FOCI),
        "line 2: experiment 'Smith et al., 2010; faces' has no foci: its sample size line "
        "'// Subjects=12' (line 3) is followed by another header line (line 5); NiMARE would "
        "read one experiment named 'Smith et al., 2010; faces Subjects=12 Jones 2012'"),
    "one id": (
        doc(REF, NAME, SUBJ, FOCI, "// Smith et al., 2010 : faces", SUBJ, FOCI),
        "line 6: experiment 'Smith et al., 2010 : faces' has NiMARE's id "
        "'Smith et al., 2010-faces', as the one on line 2 ('Smith et al., 2010; faces'): "
        "NiMARE names an experiment '<study>-<contrast>', splitting its name at the first ';' "
        "or ':' after the year; make the names differ there"),
}


@pytest.mark.parametrize("case", sorted(MESSAGES))
def test_refusal_names_file_line_and_what_was_found(case, tmp_path):
    content, message = MESSAGES[case]
    path = _write(tmp_path, content)
    with pytest.raises(InputDataError) as err:
        read_sleuth(path)
    assert str(err.value) == f"Sleuth file {path}, {message}"


NAMES = [
    "Smith et al., 2010; faces > houses", "Smith: Faces (2010); happy", "Smith; a: b",
    "no separator at all", "Lee 1999", "; leading separator", "trailing separator 2001 ;",
    "Kim 2003:", "Park (1998) a; b: c", "A 2010 b 2011; c", "2010: x", "Lee 12019; a",
    "Ng 2101; x", "pmid-12122033 (2002); Title: with colon", "  padded 2004 ;  x  ",
    "Ito 2005 : first; second", "Chen 2006;", "Wu:2007;x",
]


def test_study_contrast_splits_names_as_nimare(tmp_path):
    lines = [REF]
    for name in NAMES:
        lines += [f"// {name}", SUBJ, "1 2 3"]
    path = _write(tmp_path, doc(*lines))
    data = convert_sleuth_to_dict(str(path))
    theirs = {(study, contrast) for study, content in data.items()
              for contrast in content["contrasts"]}
    assert theirs == {study_contrast(name) for name in NAMES}
    assert len(theirs) == len(NAMES)
    _, experiments = read_sleuth(path)
    assert [e.name for e in experiments] == [name.strip() for name in NAMES]


MUTATIONS = [" ", "\t", "\n", "\r", "\r\n", "/", ";", ":", "-", "=", "\xa0", "\x0c", "\ufeff",
             "S", "s", "R", "r", "0", ".", ",", "e", "n", "_", "+"]
SEED_TEXT = doc(REF, "", "// Smith et al., 2010; faces > houses", SUBJ, FOCI, "",
                "// Jones 2012: imitation", "// Subjects=20", "0 10 40", "",
                "// Lee (1999)", "// second line; x", "// Subjects = 9", "1 2 3")
# The deliberate refusals' messages (module docstring): NiMARE reads these files.
DELIBERATE = ("NiMARE would", "non-finite", "repeats the one", "has NiMARE's id",
              "a second Reference")


def _mutate(rng, text):
    """One random edit: insert, delete or swap the case of a character, or edit a line."""
    i = rng.randrange(len(text) + 1)
    edit = rng.randrange(6)
    if edit == 0:
        return text[:i] + rng.choice(MUTATIONS) + text[i:]
    if edit == 1:
        return text[:i] + text[i + 1 :]
    if edit == 2:
        return text[:i] + text[i : i + 1].swapcase() + text[i + 1 :]
    lines = text.split("\n")
    k = rng.randrange(len(lines))
    if edit == 3:
        lines.insert(k, rng.choice(lines))
    elif edit == 4:
        del lines[k]
    else:
        lines[k] = rng.choice([" ", "\t"]) + lines[k]
    return "\n".join(lines)


def test_random_edits_of_a_valid_file_keep_parity(tmp_path):
    """Seeded edits of a valid file: each is read the same by both readers, refused by both,
    or refused by read_sleuth alone with a deliberate check's message."""
    rng = random.Random(20250910)
    outcomes = {"both read": 0, "both refuse": 0, "deliberate": 0}
    path = tmp_path / "set.txt"
    for _ in range(400):
        text = SEED_TEXT
        for _ in range(rng.choice([1, 1, 2, 3])):
            text = _mutate(rng, text)
        path.write_bytes(text.encode("utf-8"))
        theirs = _nimare(path)
        try:
            ours = _ours(*read_sleuth(path, check_bounds=False))
        except InputDataError as err:
            assert theirs is None or any(word in str(err) for word in DELIBERATE), (text, err)
            outcomes["both refuse" if theirs is None else "deliberate"] += 1
            continue
        assert ours == theirs, text
        outcomes["both read"] += 1
    assert min(outcomes.values()) >= 20, outcomes


def test_read_sleuth_does_not_import_nimare(tmp_path):
    path = _write(tmp_path, body())
    code = ("import sys\nfrom mirrorflow.meta.sleuth import read_sleuth\n"
            f"read_sleuth({str(path)!r})\nassert 'nimare' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)
