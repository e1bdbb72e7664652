"""What a job was granted, read from SLURM's environment, checked before heavy work."""

import pytest

from mirrorflow.resources import granted_memory_mb, require_memory


def test_granted_memory_from_slurm_environment():
    assert granted_memory_mb({"SLURM_MEM_PER_NODE": "8100"}) == 8100
    assert granted_memory_mb({"SLURM_MEM_PER_CPU": "2000", "SLURM_CPUS_ON_NODE": "4"}) == 8000
    assert granted_memory_mb({}) is None


def test_too_little_memory_fails_at_once_with_the_numbers():
    with pytest.raises(MemoryError, match=r"needs about 965 MB but the scheduler granted 100 MB"):
        require_memory(965, "MACM ALE of 100 experiments", {"SLURM_MEM_PER_NODE": "100"})
    require_memory(965, "MACM", {"SLURM_MEM_PER_NODE": "8100"})
    require_memory(965, "MACM", {})  # no scheduler: nothing to check


def test_macm_memory_estimate_matches_the_measured_scale():
    """Measured (the MACM job with the streamed ALE fit, peak resident set by
    ``/usr/bin/time -v``): 1.35 GB for the 4,300 Neurosynth experiments of the default
    seed; the estimate may exceed it by up to 25% (it sizes requests). An ALE of all
    14,371 peaked at 1.17 GB: the estimate stays under 2 GB."""
    from nimare.utils import get_template
    from nilearn.maskers import NiftiMasker

    from mirrorflow.meta.macm import macm_memory_mb

    masker = NiftiMasker(get_template("mni152_2mm", mask="brain")).fit()
    assert 1350 < macm_memory_mb(4300, masker) < 1350 * 1.25
    assert 1170 < macm_memory_mb(14371, masker) < 2000


def test_per_attempt_grows_with_the_attempt():
    from mirrorflow.resources import per_attempt

    memory = per_attempt(4000)
    assert [memory({}, attempt) for attempt in (1, 2, 3)] == [4000, 8000, 12000]
    assert memory.__name__ == "per_attempt_4000"
