"""Exact, faster permutations of NiMARE's ALE subtraction.

One permutation of :class:`nimare.meta.cbma.ale.ALESubtraction` shuffles the experiment
labels (:meth:`~nimare.meta.cbma.base.PairwiseCBMAEstimator._permute_pairwise_group_indices`
with the permutation's own seed), and for each permuted group takes the rows of the two
groups' masked MA maps (CSR, float32), ``log1p(-MA)`` of their values, and sums them per
voxel with ``np.bincount`` in float64: the rows from group 1 in permuted order, then,
separately, those from group 2, the two sums added. The statistic is ``1 - exp`` of that,
and the permutation keeps ``max |ALE1 - ALE2|`` (as float32) and, per voxel, whether the
difference reaches the observed one from above and from below (the tail counts).

NiMARE slices the rows and takes the logarithm again in every permutation. Here the
logarithms are taken once, by NumPy on the same float32 values (the same results), and a
compiled loop adds each row's values in the permuted order into four float64 buffers
(permuted group x original group), which is NiMARE's ``bincount`` order, so every sum is
NiMARE's to the bit; ``1 - exp`` is NumPy's on the whole map, as NiMARE computes it. The
p maps and the null of maxima are therefore identical to NiMARE's (tested bit for bit in
tests/meta/test_null.py and tests/meta/test_contrast.py; ``benchmarks/ale_subtraction.py``
times both).

Exactness rests on the order of the float64 sums: they round, so a faster order-free
summation (integer accumulation, or the total minus one group) would not give NiMARE's
values at every voxel (on the shipped sets, 57% of the voxels hold values spanning more
than float64's 53 bits).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mirrorflow.shards import Progress

__all__ = ["PermutationData", "permutation_tails"]


@njit(cache=True, nogil=True)
def _accumulate(order, n_first, n_group1, indptr, indices, logs, sums):
    """Add each experiment's log values into ``sums[permuted group * 2 + original group]``,
    experiments in permuted order (``order``: the first ``n_group1`` are group 1)."""
    for k in range(order.shape[0]):
        row = order[k]
        buffer = (0 if k < n_group1 else 2) + (0 if row < n_first else 1)
        for j in range(indptr[row], indptr[row + 1]):
            sums[buffer, indices[j]] += np.float64(logs[j])


@njit(cache=True, nogil=True)
def _tails(diff, observed, upper, lower):
    """Tail counts of one permutation's difference map; returns its largest |value|."""
    largest = 0.0
    for v in range(diff.shape[0]):
        d = diff[v]
        if abs(d) > largest:
            largest = abs(d)
        if d >= observed[v]:
            upper[v] += 1
        if d <= observed[v]:
            lower[v] += 1
    return largest


class PermutationData:
    """Both groups' MA maps as one CSR table, with ``log1p(-MA)`` taken once.

    Parameters
    ----------
    group1, group2 : scipy CSR matrices (experiments x masked voxels) or NiMARE's chunked
        CSR groups, as :class:`nimare.meta.cbma.pairwise_utils._PairwiseMAStore` holds.
    """

    def __init__(self, group1, group2):
        from scipy import sparse

        rows = [_as_csr(group1), _as_csr(group2)]
        table = sparse.vstack(rows, format="csr")
        self.n_first = rows[0].shape[0]
        self.n_voxels = table.shape[1]
        self.indptr = table.indptr.astype(np.int64)
        self.indices = table.indices.astype(np.int32)
        # NiMARE: np.log1p(-data) on the sliced rows' data, in the data's dtype (float32).
        self.logs = np.log1p(-table.data)

    def sums(self, group1_rows, group2_rows) -> tuple[np.ndarray, np.ndarray]:
        """NiMARE's ``log_sums`` of the two permuted groups (row indices into both groups,
        group 1 first)."""
        order = np.concatenate([group1_rows, group2_rows]).astype(np.int64)
        sums = np.zeros((4, self.n_voxels))
        _accumulate(order, self.n_first, len(group1_rows), self.indptr, self.indices,
                    self.logs, sums)
        return sums[0] + sums[1], sums[2] + sums[3]


def _as_csr(group):
    """A CSR matrix of a group (NiMARE's chunked groups stacked, rows in order)."""
    from scipy import sparse

    chunks = getattr(group, "chunks", None)
    if chunks is not None:
        return sparse.vstack(list(chunks), format="csr")
    return sparse.csr_matrix(group)


def permutation_tails(data: PermutationData, seeds, observed, permute, *, label="") -> tuple:
    """Run the permutations of ``seeds`` (NiMARE's per-permutation seeds, in order).

    Parameters
    ----------
    data : :class:`PermutationData`
    seeds : sequence
        One seed per permutation, as :meth:`_iteration_seeds` gives them.
    observed : array (n_voxels,)
        The observed ALE difference (group 1 - group 2).
    permute : callable
        ``permute(n_total, n_group1, seed) -> (group1 rows, group2 rows)``: NiMARE's
        ``_permute_pairwise_group_indices``.

    Returns
    -------
    abs_max : float32 array (n_permutations,)
    upper, lower : uint32 arrays (n_voxels,)
        Per voxel, the permutations whose difference is >= and <= the observed one.
    """
    n = len(seeds)
    upper = np.zeros(data.n_voxels, dtype=np.uint32)
    lower = np.zeros(data.n_voxels, dtype=np.uint32)
    abs_max = np.empty(n, dtype=np.float32)
    n_total = data.indptr.shape[0] - 1
    progress = Progress(f"{label}permutations", n, unit="permutations")
    for i, seed in enumerate(seeds):
        rows1, rows2 = permute(n_total=n_total, n_group1=data.n_first, seed=seed)
        first, second = data.sums(rows1, rows2)
        diff = (1.0 - np.exp(first)) - (1.0 - np.exp(second))
        abs_max[i] = _tails(diff, observed, upper, lower)
        progress.step()
    return abs_max, upper, lower
