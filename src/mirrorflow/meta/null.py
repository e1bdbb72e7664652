"""Exact, fast and shardable Monte Carlo null of ALE (voxel- and cluster-level FWE).

One Monte Carlo iteration of NiMARE's ALE FWE correction moves every focus to a random
in-mask voxel, builds each experiment's modelled activation (MA: the maximum of its
sample-size kernel over its foci), ALE = 1 - prod(1 - MA), and keeps three numbers: the
maximum ALE, and the largest cluster size and cluster mass above the cluster-forming
threshold (6-connectivity). NiMARE computes the whole ALE volume and labels the whole
volume every time, although only a few hundred voxels exceed the threshold.

This engine computes the same three numbers, bit for bit, from far fewer voxels:

1. **Bound.** An upper bound of ``-log(1 - ALE)`` everywhere: each focus adds the largest
   ``-log(1 - K)`` its kernel ``K`` reaches in each 2x2x2 block (sparse foci) or voxel
   (dense foci), from tables precomputed per kernel and focus position and kept where at
   least ``tau`` (the rest is the *slack*, ``tau x n_experiments``); or, for dense foci
   with few kernels (MACM), a separable convolution of the focus counts with a Gaussian
   envelope of ``-log(1 - K)`` (NiMARE's kernel is a Gaussian filter of a point), exact up
   to rounding outwards and without slack.
2. **Exact.** The blocks whose bound reaches the cluster-forming threshold are computed
   exactly; if no voxel exceeds it, the block of the largest bound gives a lower bound of
   the maximum and every block that may reach that is computed. Within a block, a voxel
   whose own sum over foci stays below is skipped; the others get NiMARE's arithmetic in
   NiMARE's order: per experiment the largest kernel value over its foci, whose
   ``log1p(-K)`` comes from a table made with NiMARE's compiled ``log1p``; these summed in
   float64 in experiment order, ``1 - exp`` and the cast to float32, as
   :func:`nimare.meta.cbma.permutation._ale_stat_from_offsets` does.
3. **Clusters.** The voxels above the threshold are joined by union-find over face
   neighbours; masses are summed in the volume's C order in float64, as
   :func:`nimare.meta.utils._calculate_cluster_measures` does (``ndimage.sum``), with the
   threshold promoted as NumPy promotes it there.

Buffers are allocated once per plan, so memory does not grow with the iterations, and
iterations are drawn in seeded blocks (:func:`draw_block`, :mod:`mirrorflow.shards`), so
any split of the blocks into shards (Snakemake jobs) gives the same null. NiMARE builds
the kernels (:func:`nimare.meta.cbma.permutation.ale_plan_for`), the randomisation space,
the cluster-forming threshold and, from the null, every corrected map
(:func:`correct_fwe`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numba import njit

from mirrorflow.exceptions import ConfigError

__all__ = [
    "BLOCK_SIZE",
    "NullPlan",
    "NullShard",
    "ale_estimator",
    "build_plan",
    "compute_shard",
    "correct_fwe",
    "draw_block",
    "early_stop",
    "merge_shards",
    "n_blocks",
    "nimare_draw",
    "null_maxima",
    "null_settings",
    "quantile_se",
    "run_blocks",
    "shard_blocks",
]

LGR = logging.getLogger(__name__)

#: Iterations per seeded block: the unit of sharding (and of early stopping).
BLOCK_SIZE = 100
#: Default ``tau`` as a fraction of the cluster-forming ``-log(1 - threshold)`` per
#: experiment: the slack of the bound is this fraction of the threshold.
TAIL_FRACTION = 0.02
#: Above this many kernel-box voxels per masked voxel (foci x box / mask), bound on single
#: voxels instead of 2x2x2 blocks: dense foci make block bounds too loose to prune.
DENSE = 100
_SAFE = 1.0 + 1e-9  # bounds are rounded outwards by this factor


@dataclass
class NullPlan:
    """Everything a null iteration needs that does not change between iterations.

    Build with :func:`build_plan`. Arrays are C-contiguous; the scratch buffers live in
    the engine (:class:`_Engine`, one per process).
    """

    shape: np.ndarray  # (3,) int64 volume shape
    flat_to_masked: np.ndarray  # int32, -1 outside the mask
    group_starts: np.ndarray  # int64 CSR of foci per experiment (NiMARE's order)
    focus_group: np.ndarray  # int64 experiment of each focus
    focus_kernel: np.ndarray  # int64 kernel of each focus
    kernel_box: np.ndarray  # float32 (n_kernels, W, W, W): kernel values, 0 = outside
    kernel_log: np.ndarray  # float64 log1p(-kernel_box), computed as NiMARE's pass does
    radius: int  # half-width R of the kernel boxes (W = 2R + 1)
    side: int  # voxels per side of a bound block (2, or 1 for dense foci)
    core_starts: np.ndarray  # int64 CSR over (kernel, parity) of the bound tables' runs
    core_delta: np.ndarray  # int64 flat offset of each run on the padded block grid
    core_first: np.ndarray  # int64 first entry of each run in core_value (runs along z)
    core_value: np.ndarray  # float64 block maxima of -log(1 - K)
    grid: np.ndarray  # (3,) int64 padded block-grid shape
    pad: int  # blocks of padding on each side of the block grid
    slack: float  # tau x n_experiments (0 for the separable bound)
    separable: bool  # dense foci: bound by a separable convolution of the focus counts
    sep_filter: np.ndarray  # float64 (n_kernels, W): 1-D factor of each kernel
    sep_scale: np.ndarray  # float64 (n_kernels,): its scale, bounding -log(1 - K)
    threshold: float  # cluster-forming ALE threshold (NiMARE's type), nan: voxel only
    threshold_f32: bool  # NiMARE's threshold arithmetic is float32 (weak scalar)
    threshold_log: float  # -log(1 - threshold), rounded down
    null_ijk: np.ndarray  # (n_null, 3) int64 randomisation space (NiMARE's)
    cell: int  # fine voxels per side of a focus-index cell
    cells: np.ndarray  # (3,) int64 cell-grid shape

    @property
    def n_foci(self) -> int:
        return int(self.group_starts[-1])

    @property
    def n_groups(self) -> int:
        return len(self.group_starts) - 1

    @property
    def voxel_only(self) -> bool:
        return not np.isfinite(self.threshold)


def build_plan(estimator, *, voxel_thresh: float | None, tail_fraction: float = TAIL_FRACTION,
               bound: str = "auto"):
    """Compile the null plan of a fitted NiMARE ALE estimator.

    Parameters
    ----------
    estimator : :class:`nimare.meta.cbma.ale.ALE`
        Fitted (``estimator.fit(dset)``), with ``null_method="approximate"``.
    voxel_thresh : :obj:`float` or None
        Cluster-forming p (NiMARE's ``voxel_thresh``); None for voxel-level FWE only.
    tail_fraction : :obj:`float`
        Bound slack as a fraction of the cluster-forming threshold (or of the kernel
        peak when voxel-level only); changes speed, never the result.
    bound : {"auto", "blocks", "voxels", "separable"}
        The first step's bound: tables on 2x2x2 blocks (sparse foci), on voxels, or the
        separable convolution (dense foci, few kernels); "auto" picks by cost. Changes
        speed, never the result.

    Returns
    -------
    :class:`NullPlan`
    """
    from nimare.meta.cbma.permutation import ale_plan_for
    from nimare.utils import _mask_coverage_to_null_ijk

    coords = estimator.inputs_["coordinates"]
    block = getattr(estimator, "blocks_", {}).get("coordinates")
    nplan = ale_plan_for(estimator, coords, block)
    if nplan is None:
        raise ConfigError("the null engine supports NiMARE's ALE kernel only")
    shape = np.asarray(nplan.shape, dtype=np.int64)
    starts = np.asarray(nplan.kernel_starts, dtype=np.int64)
    offsets = np.asarray(nplan.kernel_offsets, dtype=np.int64)
    values = np.asarray(nplan.kernel_values, dtype=np.float32)
    n_kernels = len(starts) - 1
    radius = int(np.abs(offsets).max())
    width = 2 * radius + 1
    box = np.zeros((n_kernels, width, width, width), dtype=np.float32)
    for k in range(n_kernels):
        o = offsets[starts[k] : starts[k + 1]] + radius
        box[k, o[:, 0], o[:, 1], o[:, 2]] = values[starts[k] : starts[k + 1]]
    group_starts = np.asarray(nplan.offsets, dtype=np.int64)
    n_groups = len(group_starts) - 1
    focus_group = np.repeat(np.arange(n_groups), np.diff(group_starts)).astype(np.int64)
    focus_kernel = np.asarray(nplan.group_kernel, dtype=np.int64)[focus_group]

    if voxel_thresh is None:
        threshold = np.nan
        reference = float(-np.log1p(-values.astype(np.float64).max()))
    else:
        threshold = estimator._p_to_summarystat(voxel_thresh)
        reference = float(-np.log1p(-float(threshold)))
    tau = tail_fraction * reference / max(n_groups, 1)

    n_masked = int((nplan.flat_to_masked >= 0).sum())
    if bound not in ("auto", "blocks", "voxels", "separable"):
        raise ConfigError(f"null bound must be auto, blocks, voxels or separable, got {bound!r}")
    side = 2 if len(coords) * width**3 < DENSE * n_masked else 1
    side = {"blocks": 2, "voxels": 1, "separable": 1}.get(bound, side)
    pad = (radius + side - 1) // side + 1
    grid = -(-shape // side) + 2 * pad
    core_starts, core_delta, core_first, core_value = _bound_tables(
        box, radius, tau, grid, side
    )
    is_f32 = (np.zeros(1, np.float32) - threshold).dtype == np.float32
    sep_filter, sep_scale = _separable_factors(box, radius)
    separable = False
    if side == 1 and np.isfinite(sep_scale).all():
        # three 1-D convolutions of the whole grid per kernel in use, against the scatter of
        # every focus's table (measured: ~0.26 ns per convolution tap, ~1 ns per scatter)
        entries = np.diff(core_first[core_starts])  # table entries per kernel
        scatter = float(entries[focus_kernel].sum())
        convolve = 0.26 * 3 * len(np.unique(focus_kernel)) * float(np.prod(grid)) * width
        separable = convolve < scatter if bound == "auto" else bound == "separable"
    if bound == "separable" and not separable:
        raise ConfigError("the kernels are not separable: use another null bound")
    cell = radius + 1  # a block and its kernels reach span 2-3 cells per axis
    return NullPlan(
        shape=shape,
        flat_to_masked=np.ascontiguousarray(nplan.flat_to_masked, dtype=np.int32),
        group_starts=group_starts,
        focus_group=focus_group,
        focus_kernel=focus_kernel,
        kernel_box=box,
        kernel_log=_log_table(box),
        radius=radius,
        side=side,
        core_starts=core_starts,
        core_delta=core_delta,
        core_first=core_first,
        core_value=core_value,
        grid=grid.astype(np.int64),
        pad=int(pad),
        slack=0.0 if separable else float(tau * n_groups) * _SAFE,
        separable=separable,
        sep_filter=sep_filter,
        sep_scale=sep_scale,
        threshold=threshold,
        threshold_f32=bool(is_f32),
        threshold_log=reference * (1 - 1e-5) if voxel_thresh is not None else np.inf,
        null_ijk=np.ascontiguousarray(
            _mask_coverage_to_null_ijk(estimator.masker, mask_coverage=estimator.mask_coverage),
            dtype=np.int64,
        ),
        cell=cell,
        cells=(-(-shape // cell)).astype(np.int64),
    )


def _bound_tables(box, radius, tau, grid, side):
    """Per kernel and focus position in its block: block offsets and block maxima of
    -log(1 - K) >= tau."""
    n_kernels, width = box.shape[0], box.shape[1]
    neglog = -np.log1p(-box.astype(np.float64)) * _SAFE
    starts, deltas, firsts, vals, n_values = [0], [], [], [], 0
    o = np.arange(width) - radius
    for k in range(n_kernels):
        for parity in range(side**3):
            p = np.array([parity // (side * side), (parity // side) % side, parity % side])
            # block offset of each kernel offset, per axis: floor((p + o) / side)
            b = [np.floor_divide(p[a] + o, side) for a in range(3)]
            lo = [int(b[a].min()) for a in range(3)]
            n = [int(b[a].max()) - lo[a] + 1 for a in range(3)]
            table = np.zeros(n, dtype=np.float64)
            bi, bj, bk = np.meshgrid(b[0] - lo[0], b[1] - lo[1], b[2] - lo[2], indexing="ij")
            np.maximum.at(table, (bi, bj, bk), neglog[k])
            keep = np.argwhere(table >= tau)  # C order: runs along z are consecutive
            flat = (
                (keep[:, 0] + lo[0]) * grid[1] * grid[2]
                + (keep[:, 1] + lo[1]) * grid[2]
                + (keep[:, 2] + lo[2])
            ).astype(np.int64)
            run = np.flatnonzero(np.r_[True, np.diff(flat) != 1])
            deltas.append(flat[run])
            firsts.append(run + n_values)
            vals.append(table[tuple(keep.T)])
            n_values += len(keep)
            starts.append(starts[-1] + len(run))
    firsts.append(np.array([n_values]))  # end of the last run
    return (
        np.asarray(starts, dtype=np.int64),
        np.ascontiguousarray(np.concatenate(deltas)),
        np.ascontiguousarray(np.concatenate(firsts)).astype(np.int64),
        np.ascontiguousarray(np.concatenate(vals)),
    )


def _separable_factors(box, radius):
    """Per kernel, a 1-D filter h and a scale a with -log(1 - K(o)) <= a h(ox) h(oy) h(oz).

    NiMARE's ALE kernel is a Gaussian filter of a point (separable), so K(o) is close to
    K(ox,0,0) K(0,oy,0) K(0,0,oz) / K(0)^2; the scale is the largest ratio over the box
    (rounded up), which makes the bound hold for every offset whatever the rounding.
    A kernel that is not separable gets an infinite scale (the scatter bound is used).
    """
    n_kernels, width = box.shape[0], box.shape[1]
    filters = np.zeros((n_kernels, width))
    scales = np.full(n_kernels, np.inf)
    for k in range(n_kernels):
        line = box[k, :, radius, radius].astype(np.float64)
        if line[radius] <= 0:
            continue
        h = line / line[radius]
        product = np.einsum("i,j,k->ijk", h, h, h)
        used = box[k] > 0
        if np.any(used & (product <= 0)):
            continue
        neglog = -np.log1p(-box[k].astype(np.float64))
        filters[k] = h
        scales[k] = float(np.max(neglog[used] / product[used])) * _SAFE
    return filters, scales


@njit(cache=True)
def _log_table(box):
    """log1p(-K) of every kernel value, with the same compiled log1p as NiMARE's pass."""
    out = np.empty(box.shape, dtype=np.float64)
    flat_in = box.ravel()
    flat_out = out.ravel()
    for m in range(flat_in.shape[0]):
        flat_out[m] = np.log1p(-np.float64(flat_in[m]))
    return out


@njit(cache=True)
def _separable_bound(ijk, focus_kernel, pad, grid, sep_filter, sep_scale, acc, work):
    """acc += sum over foci of a h(x - fx) h(y - fy) h(z - fz): three 1-D convolutions of
    each kernel's focus counts on the padded grid (pad > R, so no edge reaches a focus)."""
    counts, tmp1, tmp2 = work[0], work[1], work[2]
    nx, ny, nz = grid[0], grid[1], grid[2]
    width = sep_filter.shape[1]
    r = width // 2
    for kern in range(sep_filter.shape[0]):
        h = sep_filter[kern]
        n = 0
        for f in range(ijk.shape[0]):
            if focus_kernel[f] == kern:
                counts[((ijk[f, 0] + pad) * ny + ijk[f, 1] + pad) * nz + ijk[f, 2] + pad] += 1.0
                n += 1
        if n == 0:
            continue
        c3 = counts.reshape((nx, ny, nz))
        t1 = tmp1.reshape((nx, ny, nz))
        t2 = tmp2.reshape((nx, ny, nz))
        a3 = acc.reshape((nx, ny, nz))
        for x in range(r, nx - r):
            for t in range(width):
                w = h[t]
                for y in range(ny):
                    for z in range(nz):
                        t1[x, y, z] += w * c3[x + t - r, y, z]
        for x in range(nx):
            for y in range(r, ny - r):
                for t in range(width):
                    w = h[t]
                    for z in range(nz):
                        t2[x, y, z] += w * t1[x, y + t - r, z]
        scale = sep_scale[kern]
        for x in range(nx):
            for y in range(ny):
                for z in range(r, nz - r):
                    total = 0.0
                    for t in range(width):
                        total += h[t] * t2[x, y, z + t - r]
                    a3[x, y, z] += scale * total
        counts[:] = 0.0
        tmp1[:] = 0.0
        tmp2[:] = 0.0


@njit(cache=True)
def _exact_block(
    bx, by, bz, cell_foci, plan_i, cell_starts, slog, stamp, stats, bound, out_flat, out_val
):
    """Exact float32 ALE of the in-mask voxels of block (bx, by, bz) that may reach
    ``bound`` (in -log(1 - ALE)).

    Each voxel's sum over foci of -log(1 - K) bounds its -log(1 - ALE) exactly (no tail);
    voxels below ``bound`` are skipped. Writes the others' flat indices and values to
    ``out_flat``/``out_val`` and returns their number. ``slog`` holds each experiment's
    log1p(-kernel maximum) per voxel, valid where ``stamp`` is this call's tag.
    """
    (shape, flat_to_masked, _, _, _, radius, cell, cells, n_groups, side,
     kernel_log) = plan_i
    stats[1] += 1
    tag = stats[1]
    n_u = side**3
    voxel_bound = np.zeros(n_u)
    du = np.empty(n_u, dtype=np.int64)  # the block's voxels, as offsets (no divisions below)
    dv = np.empty(n_u, dtype=np.int64)
    dw = np.empty(n_u, dtype=np.int64)
    for u in range(n_u):
        du[u] = u // (side * side)
        dv[u] = (u // side) % side
        dw[u] = u % side
    x0, y0, z0 = side * bx, side * by, side * bz
    last = side - 1
    # candidate foci: the cells within reach of the block
    c0 = max((x0 - radius) // cell, 0)
    c1 = min((x0 + last + radius) // cell, cells[0] - 1)
    d0 = max((y0 - radius) // cell, 0)
    d1 = min((y0 + last + radius) // cell, cells[1] - 1)
    e0 = max((z0 - radius) // cell, 0)
    e1 = min((z0 + last + radius) // cell, cells[2] - 1)
    for ci in range(c0, c1 + 1):
        for cj in range(d0, d1 + 1):
            for ck in range(e0, e1 + 1):
                c = (ci * cells[1] + cj) * cells[2] + ck
                for q in range(cell_starts[c], cell_starts[c + 1]):
                    oi = x0 - cell_foci[q, 0] + radius
                    oj = y0 - cell_foci[q, 1] + radius
                    ok = z0 - cell_foci[q, 2] + radius
                    if oi < -last or oj < -last or ok < -last:
                        continue
                    if oi > 2 * radius or oj > 2 * radius or ok > 2 * radius:
                        continue
                    k = cell_foci[q, 3]
                    g = cell_foci[q, 4]
                    for u in range(n_u):
                        ui = oi + du[u]
                        uj = oj + dv[u]
                        uk = ok + dw[u]
                        if ui < 0 or uj < 0 or uk < 0:
                            continue
                        if ui > 2 * radius or uj > 2 * radius or uk > 2 * radius:
                            continue
                        # log1p(-K) as NiMARE computes it; the largest K of an experiment
                        # is its smallest log1p(-K) (0 outside the kernel's support)
                        log_v = kernel_log[k, ui, uj, uk]
                        if log_v == 0:
                            continue
                        voxel_bound[u] -= log_v
                        if stamp[g, u] != tag:
                            stamp[g, u] = tag
                            slog[g, u] = log_v
                        elif log_v < slog[g, u]:
                            slog[g, u] = log_v
    n_out = 0
    for u in range(n_u):
        x = x0 + du[u]
        y = y0 + dv[u]
        z = z0 + dw[u]
        inside = 0 <= x < shape[0] and 0 <= y < shape[1] and 0 <= z < shape[2]
        flat = (x * shape[1] + y) * shape[2] + z if inside else 0
        keep = inside and flat_to_masked[flat] >= 0 and voxel_bound[u] * _SAFE >= bound
        if keep:
            log_sum = 0.0
            for g in range(n_groups):  # NiMARE's order of the experiments
                if stamp[g, u] == tag:
                    log_sum += slog[g, u]
            out_flat[n_out] = flat
            out_val[n_out] = np.float32(1.0 - np.exp(log_sum))
            n_out += 1
    return n_out


@njit(cache=True)
def _iteration(ijk, plan_i, bounds_i, acc, cell_order, cell_foci, cell_starts, cell_fill,
               candidates, slog, stamp, slot, above_flat, above_val, parent, stats, work):
    """Max ALE, max cluster size and max cluster mass of one iteration's foci ``ijk``."""
    shape, focus_group, focus_kernel = plan_i[0], plan_i[2], plan_i[3]
    cell, cells, side = plan_i[6], plan_i[7], plan_i[9]
    (core_starts, core_delta, core_first, core_value, grid, pad, slack, threshold,
     threshold_f32, threshold_log, voxel_only, separable, sep_filter, sep_scale) = bounds_i
    n_foci = ijk.shape[0]
    gy = grid[1] * grid[2]
    gz = grid[2]

    # focus index: counting sort of the foci into cells (foci stay in NiMARE's order)
    n_cells = cell_starts.shape[0] - 1
    for c in range(n_cells + 1):
        cell_starts[c] = 0
    for f in range(n_foci):
        c = ((ijk[f, 0] // cell) * cells[1] + ijk[f, 1] // cell) * cells[2] + ijk[f, 2] // cell
        cell_starts[c + 1] += 1
    for c in range(n_cells):
        cell_starts[c + 1] += cell_starts[c]
        cell_fill[c] = cell_starts[c]
    for f in range(n_foci):
        c = ((ijk[f, 0] // cell) * cells[1] + ijk[f, 1] // cell) * cells[2] + ijk[f, 2] // cell
        q = cell_fill[c]
        cell_order[q] = f
        cell_foci[q, 0] = ijk[f, 0]
        cell_foci[q, 1] = ijk[f, 1]
        cell_foci[q, 2] = ijk[f, 2]
        cell_foci[q, 3] = focus_kernel[f]
        cell_foci[q, 4] = focus_group[f]
        cell_fill[c] += 1

    # 1. bound on the block grid (foci in cell order, for locality; runs along z)
    if separable:
        _separable_bound(ijk, focus_kernel, pad, grid, sep_filter, sep_scale, acc, work)
    for q in range(n_foci if not separable else 0):
        f = cell_order[q]
        i, j, k = ijk[f, 0], ijk[f, 1], ijk[f, 2]
        parity = ((i % side) * side + j % side) * side + k % side
        base = (i // side + pad) * gy + (j // side + pad) * gz + k // side + pad
        t = focus_kernel[f] * side**3 + parity
        for r in range(core_starts[t], core_starts[t + 1]):
            d = base + core_delta[r]
            first = core_first[r]
            for m in range(core_first[r + 1] - first):
                acc[d + m] += core_value[first + m]

    # 2. the blocks that may hold a voxel above the threshold (none if voxel-level only),
    # and the block with the largest bound
    n_cand = 0
    best_b = 0
    best_acc = -1.0
    level = threshold_log - slack
    for b in range(acc.shape[0]):
        a = acc[b]
        if a > best_acc:
            best_acc = a
            best_b = b
        if a >= level:
            candidates[n_cand] = b
            n_cand += 1
    n_above = 0
    max_value = np.float32(0.0)
    buf_flat = np.empty(side**3, dtype=np.int64)
    buf_val = np.empty(side**3, dtype=np.float32)
    for c in range(n_cand):
        b = candidates[c]
        stats[0] += 1
        n = _exact_block(b // gy - pad, (b // gz) % grid[1] - pad, b % gz - pad, cell_foci,
                         plan_i, cell_starts, slog, stamp, stats, threshold_log, buf_flat,
                         buf_val)
        for q in range(n):
            max_value = max(max_value, buf_val[q])
            if _above(buf_val[q], threshold, threshold_f32):
                above_flat[n_above] = buf_flat[q]
                above_val[n_above] = buf_val[q]
                n_above += 1

    # 3. no voxel above the threshold: the maximum is below it. A lower bound from the
    # block with the largest bound, then every other block that may reach it
    if n_above == 0:
        n = _exact_block(best_b // gy - pad, (best_b // gz) % grid[1] - pad,
                         best_b % gz - pad, cell_foci, plan_i, cell_starts, slog, stamp,
                         stats, -np.inf, buf_flat, buf_val)
        for q in range(n):
            max_value = max(max_value, buf_val[q])
        lower = -np.log1p(-np.float64(max_value)) * (1 - 1e-6)
        for b in range(acc.shape[0]):
            a = acc[b]
            # candidate blocks again too: step 2 skipped their voxels below the threshold
            if a < lower - slack or b == best_b:
                continue
            stats[0] += 1
            n = _exact_block(b // gy - pad, (b // gz) % grid[1] - pad, b % gz - pad,
                             cell_foci, plan_i, cell_starts, slog, stamp, stats, lower,
                             buf_flat, buf_val)
            for q in range(n):
                max_value = max(max_value, buf_val[q])
    acc[:] = 0.0
    if voxel_only or n_above == 0:
        return max_value, 0.0, 0.0

    # 4. clusters of the voxels above the threshold (face neighbours), C order
    order = np.argsort(above_flat[:n_above])
    for q in range(n_above):
        slot[above_flat[order[q]]] = q
        parent[q] = q
    sx = shape[1] * shape[2]
    sy = shape[2]
    for q in range(n_above):
        flat = above_flat[order[q]]
        z = flat % sy
        y = (flat // sy) % shape[1]
        x = flat // sx
        if z + 1 < shape[2] and slot[flat + 1] >= 0:
            _union(parent, q, slot[flat + 1])
        if y + 1 < shape[1] and slot[flat + sy] >= 0:
            _union(parent, q, slot[flat + sy])
        if x + 1 < shape[0] and slot[flat + sx] >= 0:
            _union(parent, q, slot[flat + sx])
    sizes = np.zeros(n_above, dtype=np.int64)
    masses = np.zeros(n_above, dtype=np.float64)
    for q in range(n_above):
        root = _find(parent, q)
        sizes[root] += 1
        value = above_val[order[q]]
        if threshold_f32:
            masses[root] += np.float64(value - np.float32(threshold))
        else:
            masses[root] += np.float64(value) - threshold
        slot[above_flat[order[q]]] = -1
    max_size = 0
    max_mass = 0.0
    for q in range(n_above):
        max_size = max(max_size, sizes[q])
        if sizes[q] > 0 and masses[q] > max_mass:
            max_mass = masses[q]
    return max_value, float(max_size), max_mass


@njit(cache=True)
def _above(value, threshold, threshold_f32):
    """NiMARE's test ``not (arr3d <= threshold)`` with NumPy's promotion of the threshold."""
    if threshold_f32:
        return value > np.float32(threshold)
    return np.float64(value) > threshold


@njit(cache=True)
def _find(parent, q):
    while parent[q] != q:
        parent[q] = parent[parent[q]]
        q = parent[q]
    return q


@njit(cache=True)
def _union(parent, a, b):
    ra = _find(parent, a)
    rb = _find(parent, b)
    if ra != rb:
        if ra < rb:
            parent[rb] = ra
        else:
            parent[ra] = rb


@njit(cache=True)
def _iterations(ijk_iters, plan_i, bounds_i, buffers, out):
    (acc, cell_order, cell_foci, cell_starts, cell_fill, candidates, slog, stamp, slot,
     above_flat, above_val, parent, stats, work) = buffers
    for it in range(ijk_iters.shape[0]):
        v, s, m = _iteration(ijk_iters[it], plan_i, bounds_i, acc, cell_order, cell_foci,
                             cell_starts, cell_fill, candidates, slog, stamp, slot,
                             above_flat, above_val, parent, stats, work)
        out[it, 0] = v
        out[it, 1] = s
        out[it, 2] = m


class _Engine:
    """A plan's numba arguments and its reusable buffers (one per process)."""

    def __init__(self, plan: NullPlan):
        self.plan = plan
        self.plan_i = (
            plan.shape, plan.flat_to_masked, plan.focus_group, plan.focus_kernel,
            plan.kernel_box, np.int64(plan.radius), np.int64(plan.cell), plan.cells,
            np.int64(plan.n_groups), np.int64(plan.side), plan.kernel_log,
        )
        self.bounds_i = (
            plan.core_starts, plan.core_delta, plan.core_first, plan.core_value, plan.grid,
            np.int64(plan.pad),
            float(plan.slack), float(plan.threshold), bool(plan.threshold_f32),
            float(plan.threshold_log), bool(plan.voxel_only), bool(plan.separable),
            plan.sep_filter, plan.sep_scale,
        )
        n_masked = int((plan.flat_to_masked >= 0).sum())
        n_cells = int(np.prod(plan.cells))
        self.buffers = (
            np.zeros(int(np.prod(plan.grid)), dtype=np.float64),
            np.zeros(plan.n_foci, dtype=np.int64),
            # the foci in cell order: i, j, k, kernel, experiment
            np.zeros((plan.n_foci, 5), dtype=np.int64),
            np.zeros(n_cells + 1, dtype=np.int64),
            np.zeros(n_cells, dtype=np.int64),
            np.zeros(int(np.prod(plan.grid)), dtype=np.int64),  # candidate blocks
            np.zeros((plan.n_groups, plan.side**3), dtype=np.float64),
            np.zeros((plan.n_groups, plan.side**3), dtype=np.int64),
            np.full(plan.flat_to_masked.shape[0], -1, dtype=np.int64),
            np.zeros(n_masked, dtype=np.int64),
            np.zeros(n_masked, dtype=np.float32),
            np.zeros(n_masked, dtype=np.int64),
            np.zeros(2, dtype=np.int64),  # blocks computed exactly, and the block tag
            np.zeros((3 if plan.separable else 0, int(np.prod(plan.grid))), dtype=np.float64),
        )

    def run(self, ijk_iters: np.ndarray) -> np.ndarray:
        ijk_iters = np.ascontiguousarray(ijk_iters, dtype=np.int64)
        out = np.zeros((ijk_iters.shape[0], 3), dtype=np.float64)
        _iterations(ijk_iters, self.plan_i, self.bounds_i, self.buffers, out)
        return out


def null_maxima(plan: NullPlan, ijk_iters, engine: _Engine | None = None) -> dict:
    """Max ALE, max cluster size and max cluster mass of each iteration.

    Parameters
    ----------
    plan : :class:`NullPlan`
    ijk_iters : array of shape (n_iters, n_foci, 3)
        Each iteration's foci (voxel indices, NiMARE's focus order).

    Returns
    -------
    :obj:`dict`
        ``"voxel"``, ``"size"``, ``"mass"``: float32 arrays of length n_iters, NiMARE's
        ``fwe_voxel_max``, ``fwe_cluster_size_max`` and ``fwe_cluster_mass_max``
        (size and mass are 0 for a voxel-level plan).
    """
    engine = engine or _Engine(plan)
    out = engine.run(ijk_iters)
    return {
        "voxel": out[:, 0].astype(np.float32),
        "size": out[:, 1].astype(np.float32),
        "mass": out[:, 2].astype(np.float32),
    }


# ---------------------------------------------------------------------------------------
# Draws, shards and early stopping


def draw_block(plan: NullPlan, *, seed: int, block: int, n_iters: int, chunk: int | None = None):
    """Relocated foci of the ``n_iters`` iterations of block ``block``, in chunks.

    Uniform over NiMARE's randomisation space (``mask_coverage``), one draw of ``n_foci``
    voxels per iteration from a generator seeded by (``seed``, ``block``) only, so a block
    is the same whichever shard computes it and however it is chunked. Yields arrays of
    shape (chunk, n_foci, 3); chunks hold at most ~2 million foci (memory stays flat).
    """
    from mirrorflow.shards import block_seed

    rng = np.random.default_rng(block_seed(seed, block))
    n_null = plan.null_ijk.shape[0]
    chunk = chunk or max(1, min(n_iters, 2_000_000 // max(plan.n_foci, 1)))
    for start in range(0, n_iters, chunk):
        idx = np.stack(
            [rng.integers(0, n_null, size=plan.n_foci) for _ in range(min(chunk, n_iters - start))]
        )
        yield plan.null_ijk[idx]


def nimare_draw(estimator, plan: NullPlan, n_iters: int) -> np.ndarray:
    """NiMARE's own draw for ``correct_fwe_montecarlo`` (all iterations at once, as NiMARE
    does): (n_iters, n_foci, 3). For checking the engine against NiMARE."""
    rng = estimator._get_rng("correct_fwe_montecarlo")
    idx = rng.choice(plan.null_ijk.shape[0], size=(plan.n_foci, n_iters))
    return np.ascontiguousarray(plan.null_ijk[idx, :].transpose(1, 0, 2))


@dataclass
class NullShard:
    """The null maxima of some blocks: ``{block: (n, 3) float32 [voxel, size, mass]}``."""

    blocks: dict

    def save(self, path, settings: dict) -> None:
        """npz under a temporary name, renamed when complete (a rerun never trusts half)."""
        from mirrorflow.shards import save_shard

        save_shard(path, dict(sorted(self.blocks.items())), settings)


def n_blocks(n_iters: int) -> int:
    """Blocks of :data:`BLOCK_SIZE` iterations that hold ``n_iters``."""
    from mirrorflow.shards import n_blocks as blocks

    return blocks(n_iters, BLOCK_SIZE)


def shard_blocks(shard: int, shards: int, n_iters: int) -> list[int]:
    """Blocks of shard ``shard`` (0-based) of ``shards``: every shards-th block."""
    from mirrorflow.shards import blocks_of_shard

    return blocks_of_shard(shard, shards, n_perm=n_iters, block=BLOCK_SIZE)


def run_blocks(plan: NullPlan, blocks, *, seed: int, n_iters: int, stop=None) -> NullShard:
    """Compute the null maxima of ``blocks`` (in order).

    ``stop`` (optional): a function of the maxima so far (n, 3) that returns True to stop
    after the current block (early stopping; one-shard runs only).
    """
    from mirrorflow.shards import Progress

    engine = _Engine(plan)
    out = {}
    progress = Progress("Monte Carlo null", len(blocks))
    for b in blocks:
        size = min(BLOCK_SIZE, int(n_iters) - b * BLOCK_SIZE)
        maxima = [engine.run(ijk) for ijk in draw_block(plan, seed=seed, block=b, n_iters=size)]
        out[b] = np.concatenate(maxima).astype(np.float32)
        progress.step()
        if stop is not None and stop(np.concatenate([out[k] for k in sorted(out)])):
            LGR.info("early stop after block %d (%d iterations)", b, sum(map(len, out.values())))
            break
    return NullShard(out)


def merge_shards(paths, settings: dict, *, stop=None) -> np.ndarray:
    """The merged null (n, 3) [voxel, size, mass] in block order from shard files.

    Every block must be there once (or, with ``stop``, every block up to the first at
    which ``stop`` is true), and the shards must have used ``settings``.
    """
    from mirrorflow.shards import check_blocks, read_shards

    blocks, _ = read_shards(paths, settings)
    null = []
    for b in range(n_blocks(settings["n_iters"])):
        check_blocks(blocks, b + 1, paths)
        null.append(blocks[b])
        if stop is not None and stop(np.concatenate(null)):
            break
    return np.concatenate(null)


def quantile_se(values: np.ndarray, alpha: float) -> tuple[float, float]:
    """The FWE threshold (NiMARE's ``1 - alpha`` quantile of the maxima) and its Monte Carlo
    standard error from order statistics: half the distance between the ranks
    ``k -/+ sqrt(n alpha (1 - alpha))`` around it (distribution-free)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    q = float(np.quantile(x, 1 - alpha))
    d = np.sqrt(n * alpha * (1 - alpha))
    k = n * (1 - alpha)
    lo = x[int(np.clip(np.floor(k - d), 0, n - 1))]
    hi = x[int(np.clip(np.ceil(k + d), 0, n - 1))]
    return q, float(hi - lo) / 2


def early_stop(*, alpha: float, tolerance: float | None, column: int, min_iters: int = 1000):
    """``stop`` for :func:`run_blocks`/:func:`merge_shards`: true once at least
    ``min_iters`` iterations give a threshold (column 0 voxel, 1 size, 2 mass) whose
    Monte Carlo standard error is below ``tolerance`` x threshold; None if no tolerance."""
    if tolerance is None:
        return None

    def stop(null):
        if len(null) < min_iters:
            return False
        q, se = quantile_se(null[:, column], alpha)
        return q > 0 and se <= tolerance * q

    return stop


# ---------------------------------------------------------------------------------------
# Corrected maps from a null (NiMARE's correct_fwe_montecarlo after its iterations)


def correct_fwe(result, null: np.ndarray, *, voxel_thresh: float | None):
    """Add NiMARE's Monte Carlo FWE maps to ``result`` from a precomputed null.

    The maps, their names (``*_corr-FWE_method-montecarlo``), dtypes, the null
    distributions kept on the estimator and the description are those of
    ``FWECorrector(method="montecarlo", voxel_thresh=..., vfwe_only=voxel_thresh is None)
    .transform(result)`` had its iterations given ``null``.

    Parameters
    ----------
    result : :class:`nimare.results.MetaResult`
        Uncorrected ALE result.
    null : array (n_iters, 3)
        Maxima per iteration: ALE, cluster size, cluster mass (:func:`merge_shards`).
    voxel_thresh : :obj:`float` or None
        Cluster-forming p, or None for voxel-level FWE only.

    Returns
    -------
    :class:`nimare.results.MetaResult`
        ``result`` itself, with the corrected maps added (pass ``result.copy()`` to keep
        the uncorrected one).
    """
    from nimare.correct import FWECorrector
    from nimare.stats import null_to_p
    from nimare.transforms import p_to_z
    from nimare.utils import _p_to_logp_values
    from scipy import ndimage

    f32 = np.float32
    est = result.estimator
    vfwe_only = voxel_thresh is None
    null = np.asarray(null)
    n_iters = len(null)
    voxel_max = null[:, 0].astype(f32)
    stat_values = result.get_map("stat", return_type="array")
    maps = {}
    if not vfwe_only:
        size_max, mass_max = null[:, 1].astype(f32), null[:, 2].astype(f32)
        ss_thresh = est._p_to_summarystat(voxel_thresh)
        conn = ndimage.generate_binary_structure(rank=3, connectivity=1)
        mask_arr = np.asarray(est.masker.mask_img.dataobj).astype(bool)
        stat3d = np.zeros(mask_arr.shape, dtype=f32)
        stat3d[mask_arr] = stat_values
        stat3d[stat3d <= ss_thresh] = 0
        labeled, n_clusters = ndimage.label(stat3d, conn)
        # np.unique(labeled, return_inverse=True, return_counts=True), as NiMARE calls it:
        # ndimage's labels are 0..n_clusters, each present (0: the background, in the mask)
        idx = labeled
        sizes = np.bincount(labeled.ravel(), minlength=n_clusters + 1)
        # NiMARE sums each label as np.sum(stat3d[labeled == value] - ss_thresh); the same
        # values in the same (C) order sum the same (np.sum's pairwise summation depends
        # only on the values and their order): one contiguous segment per cluster, and the
        # background, whose values are all 0 - ss_thresh
        inside = np.flatnonzero(labeled)
        order = inside[np.argsort(labeled.ravel()[inside], kind="stable")]
        values = stat3d.ravel()[order] - ss_thresh
        ends = np.cumsum(sizes[1:])
        masses = np.array(
            [np.sum(np.zeros(sizes[0], dtype=f32) - ss_thresh)]
            + [np.sum(values[e - n : e]) for e, n in zip(ends, sizes[1:])]
        )
        sizes[0] = 0
        for desc, observed, dist in (("mass", masses, mass_max), ("size", sizes, size_max)):
            # NiMARE: masker.transform of the p image, which casts to the masker's dtype
            # (float32); indexed here directly (nilearn calls gc.collect each time)
            p = null_to_p(observed, dist, "upper")[idx][mask_arr].astype(_masker_dtype(est))
            maps[f"logp_desc-{desc}_level-cluster"] = _p_to_logp_values(p, dtype=f32)
            maps[f"z_desc-{desc}_level-cluster"] = p_to_z(p, tail="one")
        est.null_distributions_["values_desc-size_level-cluster_corr-fwe_method-montecarlo"] = (
            size_max
        )
        est.null_distributions_["values_desc-mass_level-cluster_corr-fwe_method-montecarlo"] = (
            mass_max
        )
    p_vfwe = null_to_p(stat_values, voxel_max, tail="upper")
    est.null_distributions_["values_level-voxel_corr-fwe_method-montecarlo"] = voxel_max
    maps = {
        "logp_level-voxel": _p_to_logp_values(p_vfwe, dtype=f32),
        "z_level-voxel": p_to_z(p_vfwe, tail="one"),
        **maps,
    }
    corrector = FWECorrector(
        method="montecarlo", voxel_thresh=voxel_thresh, n_iters=n_iters, vfwe_only=vfwe_only
    )
    # In place: FWECorrector works on result.copy(), a deep copy of the estimator and its
    # MA maps (gigabytes for a MACM); the rules fit once and keep only the corrected result.
    out = result
    out.maps.update(
        {
            k + corrector._name_suffix: (
                v.astype(f32) if np.issubdtype(v.dtype, np.floating) and v.dtype != f32 else v
            )
            for k, v in maps.items()
        }
    )
    out.description_ += " " + _description(n_iters, voxel_thresh)
    out.estimator = est
    out.corrector = corrector
    return out


def _masker_dtype(est):
    """The dtype NiMARE's masker gives transformed images (NiftiMasker(dtype=...))."""
    dtype = getattr(est.masker, "dtype", None)
    return np.float64 if dtype is None or dtype == "auto" else dtype


def _description(n_iters, voxel_thresh):
    if voxel_thresh is None:
        return (
            "Family-wise error correction was performed using a voxel-level Monte Carlo "
            "procedure. In this procedure, null datasets are generated in which dataset "
            "coordinates are substituted with coordinates randomly drawn from the "
            "meta-analysis mask, and the maximum summary statistic is retained. This "
            f"procedure was repeated {n_iters} times to build a null distribution of summary "
            "statistics."
        )
    return (
        "Family-wise error rate correction was performed using a Monte Carlo procedure. In "
        "this procedure, null datasets are generated in which dataset coordinates are "
        "substituted with coordinates randomly drawn from the meta-analysis mask, and maximum "
        f"values are retained. This procedure was repeated {n_iters} times to build null "
        "distributions of summary statistics, cluster sizes, and cluster masses. Clusters for "
        "cluster-level correction were defined using edge-wise connectivity and a voxel-level "
        f"threshold of p < {voxel_thresh} from the uncorrected null distribution."
    )


# ---------------------------------------------------------------------------------------
# What the rules call: a NiMARE ALE estimator, a shard of its null, the merged null


def ale_estimator(dset, *, fit: bool = True, **kwargs):
    """NiMARE's ALE with the analytic null, as the rules use it: ``(estimator, result)``.

    The fit is NiMARE's, made a chunk of experiments at a time
    (:func:`mirrorflow.meta.streaming.fit_ale`: the same result in bounded memory).
    With ``fit=False`` only NiMARE's input stage runs (coordinates to voxel indices, sample
    sizes, mask): enough for a voxel-level null plan, and far cheaper than the fit for
    thousands of experiments; the result is then None.
    """
    from nimare.meta.cbma.ale import ALE

    from mirrorflow.meta.streaming import collect_inputs, fit_ale

    estimator = ALE(null_method="approximate", **kwargs)
    if fit:
        return estimator, fit_ale(estimator, dset)  # NiMARE's fit, in bounded memory
    collect_inputs(estimator, dset)
    return estimator, None


def null_settings(estimator, *, voxel_thresh, n_iters: int, seed: int) -> dict:
    """What a shard file must agree on with the merge (and with the other shards)."""
    coords = estimator.inputs_["coordinates"]
    return {
        "n_iters": int(n_iters),
        "seed": int(seed),
        "voxel_thresh": None if voxel_thresh is None else float(voxel_thresh),
        "block": BLOCK_SIZE,
        "n_foci": len(coords),
        "n_experiments": int(coords["id"].nunique()),
    }


def compute_shard(estimator, *, voxel_thresh, n_iters: int, seed: int, shard: int = 0,
                  shards: int = 1, stop=None) -> NullShard:
    """The null maxima of one shard's blocks (early ``stop`` only when there is one shard)."""
    if int(n_iters) < 1:
        raise ConfigError(f"n_iters must be >= 1, got {n_iters}")
    plan = build_plan(estimator, voxel_thresh=voxel_thresh)
    blocks = shard_blocks(shard, shards, n_iters)
    LGR.info(
        "null shard %d/%d: blocks %s of %d iterations (%s bound, %d foci, %d experiments)",
        shard + 1, shards, blocks, n_iters, "separable" if plan.separable else
        f"{plan.side}-voxel block", plan.n_foci, plan.n_groups,
    )
    return run_blocks(plan, blocks, seed=seed, n_iters=n_iters,
                      stop=stop if shards == 1 else None)
