"""Seeded simulator of coordinate sets for a two-category ALE meta-analysis.

Each category (for example ``mimicry`` and ``contagion``) gets ``n_experiments``
simulated experiments. Every experiment reports one focus drawn around each planted
true focus (the foci shared by all categories plus the category's own foci) and
``n_noise_foci`` foci placed uniformly in the MNI152 2 mm brain mask. The drawing is
done by :func:`nimare.generate.create_coordinate_dataset`; this module only chooses
the seeds and sample sizes, renames the studies and returns NiMARE's JSON format.
"""

from __future__ import annotations

import logging

import numpy as np

from mirrorflow.exceptions import ConfigError

__all__ = ["simulate_coordinate_sets", "simulated_study_ids", "uniform_coordinate_source"]

LGR = logging.getLogger(__name__)


def simulate_coordinate_sets(
    *,
    categories: dict[str, list[list[float]]],
    shared_foci: list[list[float]],
    n_experiments: int,
    sample_size: tuple[int, int],
    n_noise_foci: int,
    fwhm: float,
    seed: int,
) -> tuple[dict[str, dict], dict]:
    """Simulate one NiMARE coordinate dataset per task category.

    Parameters
    ----------
    categories : :obj:`dict` of :obj:`str` to :obj:`list` of [x, y, z]
        Category label (alphanumeric) to the MNI coordinates (mm) of the foci planted
        only in that category. A list may be empty.
    shared_foci : :obj:`list` of [x, y, z]
        MNI coordinates (mm) of the foci planted in every category.
    n_experiments : :obj:`int`
        Number of experiments simulated per category.
    sample_size : (:obj:`int`, :obj:`int`)
        Inclusive range from which each experiment's sample size is drawn uniformly.
    n_noise_foci : :obj:`int`
        Number of foci per experiment placed uniformly at random in the brain mask.
    fwhm : :obj:`float`
        Full width at half maximum (mm) of the spread of reported foci around each
        planted focus.
    seed : :obj:`int`
        Seed; the same seed and arguments give the same datasets.

    Returns
    -------
    datasets : :obj:`dict` of :obj:`str` to :obj:`dict`
        Category label to a NiMARE dataset dictionary (``Dataset(source)`` reads it),
        with study ids ``<category>-<NN>`` so ids differ between categories.
    truth : :obj:`dict`
        ``{"shared_foci": [...], "category_foci": {label: [...]}, "planted_foci":
        {label: [...]}}``: the planted foci snapped to the 2 mm grid, as NiMARE places
        them, plus the simulation parameters.

    Raises
    ------
    ConfigError
        If a label is not alphanumeric, a coordinate is not a triple, or a count or
        range is invalid.
    """
    _check_arguments(
        categories=categories,
        shared_foci=shared_foci,
        n_experiments=n_experiments,
        sample_size=sample_size,
        n_noise_foci=n_noise_foci,
        fwhm=fwhm,
    )
    from nimare.generate import create_coordinate_dataset

    from mirrorflow.jobs import cache_jitted

    cache_jitted("sparse")  # NiMARE's simulator indexes sparse arrays: ~7 s compile a process
    root = np.random.SeedSequence(int(seed))
    children = root.spawn(len(categories))
    datasets, planted = {}, {}
    for child, (label, specific) in zip(children, categories.items()):
        size_rng = np.random.default_rng(child.spawn(1)[0])
        sizes = size_rng.integers(
            sample_size[0], sample_size[1], endpoint=True, size=n_experiments
        )
        nimare_seed = int(child.generate_state(1)[0])
        foci = [list(map(float, f)) for f in [*shared_foci, *specific]]
        LGR.info(
            "Simulating %d experiments for %r: %d planted foci, %d noise foci each",
            n_experiments,
            label,
            len(foci),
            n_noise_foci,
        )
        truth_xyz, dset = create_coordinate_dataset(
            foci=foci,
            foci_percentage="100%",
            fwhm=float(fwhm),
            sample_size=[int(s) for s in sizes],
            n_studies=n_experiments,
            n_noise_foci=n_noise_foci,
            seed=nimare_seed,
            space="MNI",
        )
        datasets[label] = _dataset_to_dict(dset, label=label)
        planted[label] = [[float(v) for v in xyz] for xyz in truth_xyz]

    n_shared = len(shared_foci)
    first = next(iter(planted.values()))
    truth = {
        "shared_foci": first[:n_shared],
        "category_foci": {label: xyz[n_shared:] for label, xyz in planted.items()},
        "planted_foci": planted,
        "parameters": {
            "n_experiments": n_experiments,
            "sample_size": list(sample_size),
            "n_noise_foci": n_noise_foci,
            "fwhm": fwhm,
            "seed": seed,
        },
    }
    return datasets, truth


def _check_arguments(*, categories, shared_foci, n_experiments, sample_size, n_noise_foci, fwhm):
    """Refuse labels, coordinates and counts the simulator cannot use."""
    from mirrorflow.io.bids import check_label

    if len(categories) < 1:
        raise ConfigError("simulation: 'categories' is empty; give at least one category")
    for label, foci in categories.items():
        check_label(label, what="simulation category")
        _check_foci(foci, what=f"foci of category {label!r}")
    _check_foci(shared_foci, what="shared foci")
    if int(n_experiments) < 2:
        raise ConfigError(f"simulation: n_experiments must be >= 2, got {n_experiments}")
    if len(sample_size) != 2 or not 1 <= int(sample_size[0]) <= int(sample_size[1]):
        raise ConfigError(
            f"simulation: sample_size must be [low, high] with 1 <= low <= high, got {sample_size}"
        )
    if int(n_noise_foci) < 0:
        raise ConfigError(f"simulation: n_noise_foci must be >= 0, got {n_noise_foci}")
    if not float(fwhm) > 0:
        raise ConfigError(f"simulation: fwhm must be > 0 mm, got {fwhm}")


def _check_foci(foci, *, what):
    """Each focus must be three finite numbers."""
    for focus in foci:
        if len(focus) != 3 or not np.all(np.isfinite(np.asarray(focus, dtype=float))):
            raise ConfigError(f"simulation: {what}: {focus!r} is not an [x, y, z] triple")


def simulated_study_ids(label: str, n_experiments: int) -> list[str]:
    """Study ids of a simulated category, in order: ``<label>-<NN>`` numbered from 1 and
    zero-padded to at least two digits; each study has one contrast, ``"1"`` (so NiMARE's
    experiment ids are ``<label>-<NN>-1``)."""
    width = max(2, len(str(n_experiments)))
    return [f"{label}-{number:0{width}d}" for number in range(1, n_experiments + 1)]


def _dataset_to_dict(dset, *, label):
    """NiMARE JSON dictionary of a simulated Dataset, with the ids of
    :func:`simulated_study_ids`."""
    coords = dset.coordinates
    meta = dset.metadata.set_index("id")
    source = {}
    study_ids = simulated_study_ids(label, len(dset.ids))
    for study_id, dset_id in zip(study_ids, sorted(dset.ids, key=_study_number)):
        rows = coords[coords["id"] == dset_id]
        sample = meta.loc[dset_id, "sample_sizes"]
        source[study_id] = {
            "contrasts": {
                "1": {
                    "coords": {
                        "space": "MNI",
                        "x": [float(v) for v in rows["x"]],
                        "y": [float(v) for v in rows["y"]],
                        "z": [float(v) for v in rows["z"]],
                    },
                    "metadata": {"sample_sizes": [int(np.ravel(sample)[0])]},
                }
            }
        }
    return source


def _study_number(dset_id: str) -> int:
    """Numeric order of NiMARE's simulated ids ``study-<k>-1``."""
    return int(dset_id.split("-")[1])


def uniform_coordinate_source(*, n_experiments: int, n_foci: int, seed: int,
                              sample_size: int | None = None) -> dict:
    """A null coordinate set in NiMARE's JSON format: ``n_foci`` foci per experiment at
    voxels drawn uniformly in nilearn's 2 mm MNI152 brain mask (no convergence). Sample
    sizes are ``sample_size``, or drawn uniformly in 10-40. For tests and benchmarks of the
    Monte Carlo null (:mod:`mirrorflow.meta.null`)."""
    from nilearn.datasets import load_mni152_brain_mask

    mask = load_mni152_brain_mask(resolution=2)
    ijk = np.argwhere(np.asarray(mask.dataobj) > 0)
    rng = np.random.default_rng(seed)
    source = {}
    for e in range(n_experiments):
        xyz = ijk[rng.integers(0, len(ijk), n_foci)] @ mask.affine[:3, :3].T + mask.affine[:3, 3]
        size = sample_size or int(rng.integers(10, 41))
        source[f"exp{e:03d}"] = {"contrasts": {"1": {
            "coords": {"space": "MNI", "x": xyz[:, 0].tolist(), "y": xyz[:, 1].tolist(),
                       "z": xyz[:, 2].tolist()},
            "metadata": {"sample_sizes": [size]},
        }}}
    return source
