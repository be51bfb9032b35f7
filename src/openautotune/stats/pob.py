"""Exact probability of being best, by one-dimensional quadrature.

For independent posteriors with densities f_k and distribution functions F_k,

    P(k is best)  = integral f_k(x) * prod_{j != k} F_j(x) dx
    P(k is lowest) = integral f_k(x) * prod_{j != k} S_j(x) dx     (S = 1 - F, the survival function)

Every integral is taken on ONE shared grid, so the K x G matrices of densities and distribution
values are computed once.

How the grid is built, and why it is accurate:

1. Native edges. Each posterior contributes its mean and its quantiles at the standard-normal
   levels Phi(c), c = -8.5, -8, ..., 8.5. For a Normal these are exactly mean + c * sd; for a skewed Beta
   or a heavy-tailed Student-t they are the same idea measured in probability, so a Beta(1, 1e6)
   squeezed against 0 or a Cauchy-like t with 1 df gets panels where its mass actually is. Each
   native panel holds at most ~19% of that posterior's mass and spans half a "standard deviation"
   of it, so every density and distribution function is smooth and nearly polynomial on it.
   Mass outside a posterior's outer edges is Phi(-8.5) ~ 1e-17 per side: negligible, which is
   also why a posterior is evaluated only between its own outer edges (0 density outside, F = 0
   below and 1 above), saving most of the work when arms are far apart.
2. Shared panels. The union of all native edges is merged greedily: a panel is closed as soon as
   extending it would make it wider than the narrowest native panel (of any posterior) it
   overlaps. So no panel is coarser than any posterior's own resolution where that posterior
   lives, and many overlapping arms do not multiply the panel count. The density of the grid
   therefore follows the posteriors' own scales: peaked arms (n = 1e6, sd ~ 2e-4) get fine panels
   where they sit, wide arms get coarse ones, and the grid spans every posterior's support.
3. Nodes. Each panel gets ``_NODES`` (16) Gauss-Legendre nodes, exact for polynomials of degree
   31; on panels of half a standard deviation this reaches ~1e-15 per panel (checked against
   adaptive ``scipy.integrate.quad`` in tests/stats/test_pob_reference.py).
4. Products without division. prod_{j != k} F_j is the product of a prefix product (j < k) and a
   suffix product (j > k), so a distribution value of exactly 0 is harmless (no 0/0), and
   underflow only happens where the true value is below ~1e-308.
5. A check, not a cover-up. The P_k must sum to 1 (the sum is the integral of d/dx prod F_j). If
   the sum is off by more than ``_REFINE_ABOVE`` (1e-11) every panel is halved and the integral
   recomputed, up to ``_MAX_REFINEMENTS`` times; if it is still off by more than ``SUM_TOLERANCE``
   (1e-10) a ``QuadratureError`` is raised. Only a verified deviation below that is normalised
   away, so the result sums to 1 to rounding.

Everything is deterministic: no random numbers, and reductions use numpy's fixed pairwise
summation rather than BLAS, whose summation order can vary between threads.

``monte_carlo_pob`` is kept only as the baseline for bench/pob.py; decisions never use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
from scipy import special

from openautotune.stats.posteriors import FloatArray, Posterior

_EDGE_SCORES: Final = np.arange(-8.5, 0.0, 0.5)
# Lower-tail probabilities Phi(c) for c < 0; upper edges use the inverse survival function at the
# same probabilities, because 1 - 1e-17 is 1.0 in floating point.
_EDGE_TAIL_PROBS: Final[FloatArray] = np.asarray(special.ndtr(_EDGE_SCORES), dtype=np.float64)
_NODES: Final = 16
_REFINE_ABOVE: Final = 1e-11
_MAX_REFINEMENTS: Final = 3
SUM_TOLERANCE: Final = 1e-10
"""Largest deviation of sum(P) from 1 that is normalised away; larger means a quadrature failure."""


class QuadratureError(ArithmeticError):
    """The quadrature could not reach the required accuracy (a bug or a pathological input)."""


def _native_edges(posterior: Posterior) -> FloatArray:
    lower = posterior.ppf(_EDGE_TAIL_PROBS)
    upper = posterior.isf(_EDGE_TAIL_PROBS)
    # The median (c = 0) joins the halves; the mean is an edge too (it differs from the median for
    # a skewed Beta), as the spec asks for breakpoints around every posterior's mean.
    centre = np.array([float(posterior.ppf(0.5)), posterior.mean])
    edges = np.unique(np.concatenate([lower, centre, upper]))
    finite: FloatArray = edges[np.isfinite(edges)]
    if finite.size < 2:
        raise QuadratureError(f"posterior {posterior.params()} has a degenerate spread")
    return finite


def _merge_edges(native: Sequence[FloatArray]) -> FloatArray:
    union = np.unique(np.concatenate(native))
    mids = (union[:-1] + union[1:]) / 2.0
    # finest[i]: the narrowest native panel (over posteriors covering it) containing union panel i.
    finest = np.full(mids.shape, np.inf)
    for edges in native:
        idx = np.searchsorted(edges, mids)
        inside = (idx > 0) & (idx < edges.size)
        widths = np.full(mids.shape, np.inf)
        widths[inside] = edges[idx[inside]] - edges[idx[inside] - 1]
        finest = np.minimum(finest, widths)
    kept = [float(union[0])]
    narrowest = np.inf
    for i in range(mids.size):
        candidate = min(narrowest, float(finest[i]))
        if union[i + 1] - kept[-1] > candidate:
            # Extending the open panel past union[i] would make it coarser than a native panel it
            # covers: close it at union[i] (never empty: a union panel fits its own native one).
            kept.append(float(union[i]))
            narrowest = float(finest[i])
        else:
            narrowest = candidate
    kept.append(float(union[-1]))
    return np.asarray(kept, dtype=np.float64)


def _halve(edges: FloatArray) -> FloatArray:
    mids = (edges[:-1] + edges[1:]) / 2.0
    out = np.empty(edges.size + mids.size, dtype=np.float64)
    out[0::2] = edges
    out[1::2] = mids
    return out


def _nodes_and_weights(edges: FloatArray) -> tuple[FloatArray, FloatArray]:
    unit_nodes, unit_weights = np.polynomial.legendre.leggauss(_NODES)
    half = (edges[1:] - edges[:-1]) / 2.0
    centre = (edges[1:] + edges[:-1]) / 2.0
    nodes = (centre[:, None] + half[:, None] * unit_nodes[None, :]).ravel()
    weights = (half[:, None] * unit_weights[None, :]).ravel()
    return nodes, weights


def _integrate(
    posteriors: Sequence[Posterior], native: Sequence[FloatArray], edges: FloatArray, lower_is_better: bool
) -> FloatArray:
    nodes, weights = _nodes_and_weights(edges)
    k, g = len(posteriors), nodes.size
    density = np.zeros((k, g))
    # "beats" holds F_j (or S_j when lower is better): the chance arm j is below (above) x.
    beats = np.zeros((k, g))
    for i, (posterior, own) in enumerate(zip(posteriors, native, strict=True)):
        start = int(np.searchsorted(nodes, own[0], side="left"))
        stop = int(np.searchsorted(nodes, own[-1], side="right"))
        inside = nodes[start:stop]
        density[i, start:stop] = posterior.pdf(inside)
        if lower_is_better:
            beats[i, :start] = 1.0
            beats[i, start:stop] = posterior.sf(inside)
        else:
            beats[i, start:stop] = posterior.cdf(inside)
            beats[i, stop:] = 1.0
    before = np.ones((k, g))
    after = np.ones((k, g))
    before[1:] = np.cumprod(beats[:-1], axis=0)
    after[:-1] = np.cumprod(beats[::-1], axis=0)[::-1][1:]
    integrand = density * before * after * weights[None, :]
    return np.asarray(integrand.sum(axis=1), dtype=np.float64)


def probability_of_best(posteriors: Sequence[Posterior], *, lower_is_better: bool = False) -> FloatArray:
    """P(each posterior's value is the highest), or the lowest with ``lower_is_better``.

    Exact to ~1e-12 (see the module docstring); the result sums to 1. Raises ``ValueError`` for no
    posteriors and ``QuadratureError`` if the accuracy check fails.
    """
    if not posteriors:
        raise ValueError("probability_of_best needs at least one posterior")
    if len(posteriors) == 1:
        return np.ones(1)
    native = [_native_edges(p) for p in posteriors]
    edges = _merge_edges(native)
    pob = _integrate(posteriors, native, edges, lower_is_better)
    refinements = 0
    while abs(float(pob.sum()) - 1.0) > _REFINE_ABOVE and refinements < _MAX_REFINEMENTS:
        edges = _halve(edges)
        pob = _integrate(posteriors, native, edges, lower_is_better)
        refinements += 1
    deviation = abs(float(pob.sum()) - 1.0)
    if deviation > SUM_TOLERANCE:
        raise QuadratureError(f"P(best) sums to 1 +- {deviation:.2e} even with {refinements} refinements")
    pob = np.clip(pob, 0.0, None)
    return np.asarray(pob / pob.sum(), dtype=np.float64)


def monte_carlo_pob(
    posteriors: Sequence[Posterior], draws: int, rng: np.random.Generator, *, lower_is_better: bool = False
) -> FloatArray:
    """Monte-Carlo estimate of P(best): the benchmark's baseline only, never for decisions."""
    if not posteriors:
        raise ValueError("monte_carlo_pob needs at least one posterior")
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    samples = np.stack([p.sample(draws, rng) for p in posteriors])
    best = np.argmin(samples, axis=0) if lower_is_better else np.argmax(samples, axis=0)
    counts = np.bincount(best, minlength=len(posteriors))
    return np.asarray(counts / draws, dtype=np.float64)
