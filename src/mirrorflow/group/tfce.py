"""Threshold-free cluster enhancement as nilearn computes it, in a fraction of its time.

nilearn's :func:`nilearn.mass_univariate._utils.calculate_tfce` (FSL's convention: 100
steps of ``dh`` up to the map's maximum, E = 0.5, H = 2, no ``dh`` factor) zeroes the map
below each threshold and labels the whole volume with ``scipy.ndimage.label``, 100 times
per map and per permutation. Here the voxels above the lowest threshold are joined once,
from the highest threshold down, by union-find over their face neighbours (a compiled
loop), which gives the clusters of every threshold as a tree; each cluster's term
``sign * size**E * h**H`` is then added threshold by threshold from the lowest, as nilearn
adds them, and every voxel of a cluster shares those running sums, with the powers
computed by NumPy as nilearn computes them: the TFCE map is nilearn's bit for bit
(tests/group/test_tfce.py; ``benchmarks/group_permutation.py`` times both).

:func:`nilearn_tfce` swaps this function into nilearn's permutation loop
(``nilearn.mass_univariate.permuted_least_squares.calculate_tfce``, a module attribute,
the one place where mirrorflow reaches into nilearn's internals); anything the fast path
does not cover (another connectivity, a threshold at or below zero) goes to nilearn's own
function.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from numba import njit

__all__ = ["calculate_tfce", "nilearn_tfce"]


@njit(cache=True, nogil=True)
def _find(parent, p):
    root = p
    while parent[root] != root:
        root = parent[root]
    while parent[p] != root:  # path compression
        parent[p], p = root, parent[p]
    return root


@njit(cache=True, nogil=True)
def _clusters(order, n_active, shape, slot):
    """The clusters at every threshold, as a tree: union-find over the voxels in
    ``order`` (largest value first), adding those at or above each threshold from the
    highest down (``n_active[j]``: how many; ``slot``: the volume's position of each voxel
    in ``order``, -1 for none).

    Returns per node (a cluster over the thresholds where it keeps its voxels) its size,
    its lowest and highest threshold index, and its parent (the cluster it joins one
    threshold lower; -1 at the lowest), and each voxel's entry node (its cluster at its
    own highest threshold). Parents come after their children."""
    nx, ny, nz = shape
    k = order.shape[0]
    parent = np.arange(k)
    size = np.ones(k, dtype=np.int64)
    node_of = np.full(k, -1, dtype=np.int64)  # node of a root, -1: none (yet) this step
    node_size = np.empty(k, dtype=np.int64)
    node_lo = np.zeros(k, dtype=np.int64)
    node_hi = np.empty(k, dtype=np.int64)
    node_parent = np.full(k, -1, dtype=np.int64)
    entry = np.empty(k, dtype=np.int64)
    old_nodes = np.empty(k, dtype=np.int64)  # nodes a step supersedes, with their roots
    old_roots = np.empty(k, dtype=np.int64)
    n_nodes = 0
    for j in range(n_active.shape[0] - 1, -1, -1):
        first = n_active[j + 1] if j + 1 < n_active.shape[0] else 0
        n = n_active[j]
        n_old = 0
        for p in range(first, n):
            v = order[p]
            x = v // (ny * nz)
            y = (v // nz) % ny
            z = v % nz
            for direction in range(6):
                axis, step = direction // 2, 1 - 2 * (direction % 2)
                if axis == 0:
                    if (x == 0 and step < 0) or (x == nx - 1 and step > 0):
                        continue
                    q = slot[v + step * ny * nz]
                elif axis == 1:
                    if (y == 0 and step < 0) or (y == ny - 1 and step > 0):
                        continue
                    q = slot[v + step * nz]
                else:
                    if (z == 0 and step < 0) or (z == nz - 1 and step > 0):
                        continue
                    q = slot[v + step]
                if q < 0 or q >= n or (q >= first and q > p):
                    continue  # inactive, or a new voxel that joins it itself
                a, b = _find(parent, p), _find(parent, q)
                if a == b:
                    continue
                for r in (a, b):  # a cluster of a higher threshold grows: its node ends
                    if node_of[r] >= 0:
                        old_nodes[n_old], old_roots[n_old] = node_of[r], r
                        n_old += 1
                        node_of[r] = -1
                if size[a] < size[b]:
                    a, b = b, a
                parent[b] = a
                size[a] += size[b]
        for p in range(first, n):
            r = _find(parent, p)
            if node_of[r] < 0:
                node_of[r] = n_nodes
                node_size[n_nodes], node_hi[n_nodes] = size[r], j
                n_nodes += 1
            entry[p] = node_of[r]
        for i in range(n_old):
            node = old_nodes[i]
            node_parent[node] = node_of[_find(parent, old_roots[i])]
            node_lo[node] = j + 1
    return (node_size[:n_nodes], node_lo[:n_nodes], node_hi[:n_nodes],
            node_parent[:n_nodes], entry)


@njit(cache=True, nogil=True)
def _node_sums(node_size, node_lo, node_hi, node_parent, signed_extent, height):
    """Each node's running TFCE sum up to its highest threshold, added threshold by
    threshold from the lowest (nilearn's order: every voxel of a node shares its sums)."""
    sums = np.empty(node_size.shape[0], dtype=np.float64)
    for node in range(node_size.shape[0] - 1, -1, -1):  # parents first
        s = sums[node_parent[node]] if node_parent[node] >= 0 else 0.0
        for j in range(node_lo[node], node_hi[node] + 1):
            s += signed_extent[node_size[node]] * height[j]
        sums[node] = s
    return sums


@njit(cache=True, nogil=True)
def _path_sum(node, node_size, node_lo, node_hi, node_parent, signed_extent, height, start):
    """One voxel's sum from ``start`` (its sum of the other sign: NaN voxels), in order."""
    path = []
    while node >= 0:
        path.append(node)
        node = node_parent[node]
    s = start
    for i in range(len(path) - 1, -1, -1):
        n = path[i]
        for j in range(node_lo[n], node_hi[n] + 1):
            s += signed_extent[node_size[n]] * height[j]
    return s


def calculate_tfce(arr4d, bin_struct, E=0.5, H=2, dh="auto", two_sided_test=True):
    """nilearn's ``calculate_tfce`` (same arguments, same result, bit for bit)."""
    from nilearn.mass_univariate import _utils
    from scipy.ndimage import generate_binary_structure

    if (not np.array_equal(bin_struct, generate_binary_structure(3, 1))
            or arr4d.dtype != np.float64):
        return _utils.calculate_tfce(arr4d, bin_struct, E=E, H=H, dh=dh,
                                     two_sided_test=two_sided_test)
    tfce_4d = np.zeros_like(arr4d)
    shape = np.array(arr4d.shape[:3], dtype=np.int64)
    for i_regressor in range(arr4d.shape[3]):
        arr3d = arr4d[..., i_regressor]
        thresholds = _utils._return_score_threshs(arr3d, dh, two_sided_test)
        if thresholds[0] <= 0:  # the background would be a cluster: nilearn's own way
            tfce_4d[..., i_regressor] = _utils.calculate_tfce(
                arr3d[..., None], bin_struct, E=E, H=H, dh=dh,
                two_sided_test=two_sided_test)[..., 0]
            continue
        height = np.array([h ** H for h in thresholds], dtype=np.float64)
        out = np.zeros(arr3d.size, dtype=np.float64)
        for sign in ([-1, 1] if two_sided_test else [1]):
            values = (arr3d * sign).ravel()
            # nilearn zeroes voxels below each threshold: NaN is never below, so it stays.
            key = np.where(np.isnan(values), np.inf, values)
            order = np.flatnonzero(key >= thresholds[0])
            order = order[np.argsort(-key[order], kind="stable")]
            ranked = -key[order]
            n_active = np.searchsorted(ranked, -thresholds, side="right").astype(np.int64)
            slot = np.full(arr3d.size, -1, dtype=np.int64)
            slot[order] = np.arange(order.size)
            signed_extent = sign * (np.arange(order.size + 1) ** E)
            tree = _clusters(order.astype(np.int64), n_active, shape, slot)
            sizes, low, high, parents, entry = tree
            sums = _node_sums(sizes, low, high, parents, signed_extent, height)
            before = out[order]
            out[order] = sums[entry]
            for i in np.flatnonzero(before != 0):  # NaN voxels: one sum over both signs
                out[order[i]] = _path_sum(entry[i], sizes, low, high, parents,
                                          signed_extent, height, before[i])
        tfce_4d[..., i_regressor] = out.reshape(arr3d.shape)
    return tfce_4d


@contextmanager
def nilearn_tfce():
    """Within the block, nilearn's permutation functions use :func:`calculate_tfce`."""
    from nilearn.mass_univariate import permuted_least_squares as pls

    original = pls.calculate_tfce
    pls.calculate_tfce = calculate_tfce
    try:
        yield
    finally:
        pls.calculate_tfce = original
