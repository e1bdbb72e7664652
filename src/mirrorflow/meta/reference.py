"""Reference database for MACM: the Neurosynth v7 files as a pickled NiMARE Dataset.

:func:`nimare.io.convert_neurosynth_to_dataset` reads the coordinates and metadata
tables (about 19 s for the full database) and :meth:`nimare.dataset.Dataset.save`
pickles the result once, so that every MACM reads it in a few seconds. The pickle is
written uncompressed: gzip compression costs about 27 s on every build for a file
that only lives in the output folder.

Neurosynth gives no sample sizes. They are set later, at MACM time, for the selected
experiments only (see :mod:`mirrorflow.meta.macm`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from mirrorflow.exceptions import InputDataError

__all__ = ["NEUROSYNTH_FILES", "build_reference", "load_reference", "neurosynth_paths"]

LGR = logging.getLogger(__name__)

#: File names of the Neurosynth v7 release (as fetched by ``nimare.extract.fetch_neurosynth``).
NEUROSYNTH_FILES = {
    "coordinates": "data-neurosynth_version-7_coordinates.tsv.gz",
    "metadata": "data-neurosynth_version-7_metadata.tsv.gz",
}


def neurosynth_paths(reference_dir) -> dict[str, Path]:
    """Paths of the Neurosynth coordinates and metadata tables in ``reference_dir``.

    Raises
    ------
    InputDataError
        If either file is missing; the message names the file and how to obtain it.
    """
    reference_dir = Path(reference_dir)
    paths = {key: reference_dir / name for key, name in NEUROSYNTH_FILES.items()}
    for path in paths.values():
        if not path.is_file():
            raise InputDataError(
                f"Neurosynth file {path} does not exist; download the version-7 files with "
                "nimare.extract.fetch_neurosynth(version='7') into that folder"
            )
    return paths


def build_reference(*, reference_dir, output_file) -> dict:
    """Convert the Neurosynth v7 tables to a NiMARE Dataset and pickle it.

    Parameters
    ----------
    reference_dir : :obj:`str` or :class:`~pathlib.Path`
        Folder holding ``data-neurosynth_version-7_coordinates.tsv.gz`` and
        ``data-neurosynth_version-7_metadata.tsv.gz``.
    output_file : :obj:`str` or :class:`~pathlib.Path`
        Pickle to write (uncompressed; ``.pkl``).

    Returns
    -------
    :obj:`dict`
        ``"n_studies"``, ``"n_foci"`` and ``"description"``.

    Raises
    ------
    InputDataError
        If a Neurosynth file is missing or NiMARE cannot convert it.
    """
    import nimare
    from nimare.io import convert_neurosynth_to_dataset

    paths = neurosynth_paths(reference_dir)
    LGR.info("Converting %s", paths["coordinates"])
    try:
        dset = convert_neurosynth_to_dataset(
            coordinates_file=str(paths["coordinates"]),
            metadata_file=str(paths["metadata"]),
            target="mni152_2mm",
        )
    except Exception as err:  # pandas and NiMARE raise several types on malformed tables
        raise InputDataError(
            f"Neurosynth files in {reference_dir}: NiMARE cannot convert them ({err})"
        ) from err
    output_file = Path(output_file)
    output_file.parent.mkdir(parents=True, exist_ok=True)
    dset.save(str(output_file), compress=False)
    description = (
        f"Reference database for MACM: Neurosynth version 7 (Yarkoni et al. 2011; "
        f"{len(dset.ids)} experiments, {len(dset.coordinates)} foci in MNI space) converted "
        f"with NiMARE {nimare.__version__} convert_neurosynth_to_dataset."
    )
    LGR.info(description)
    return {
        "n_studies": len(dset.ids),
        "n_foci": len(dset.coordinates),
        "description": description,
    }


def load_reference(path):
    """Load the pickled reference Dataset written by :func:`build_reference`.

    Raises
    ------
    InputDataError
        If the file is missing or is not a pickled NiMARE Dataset.
    """
    from nimare.dataset import Dataset

    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"reference dataset {path}: file does not exist")
    try:
        dset = Dataset.load(str(path), compressed=path.suffix == ".gz")
    except Exception as err:  # unpickling raises many types
        raise InputDataError(f"reference dataset {path}: cannot be loaded ({err})") from err
    if not isinstance(dset, Dataset):
        raise InputDataError(
            f"reference dataset {path}: holds a {type(dset).__name__}, not a NiMARE Dataset"
        )
    return dset
