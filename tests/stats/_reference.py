"""An independent reference for P(best): adaptive ``scipy.integrate.quad``, one integral per variant.

Written apart from ``openautotune.stats`` on purpose:

- distribution functions come straight from ``scipy.special`` (betainc, ndtr, stdtr) and densities
  from closed-form formulas, not from scipy.stats as in the package (a Beta density's constant is
  taken from Boost once, at its mean: the log-gamma formula alone loses ~1e-10 relative accuracy at
  a = b = 5e5, too close to the 1e-8 budget for a reference);
- each variant gets its own integration range (40 spreads around its centre) with breakpoints at
  fixed multiples of every variant's spread, not the package's shared quantile grid;
- the tails beyond that range are integrated to the support's ends (infinite for Normal and t)
  instead of being cut off.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import integrate, special
from scipy import stats as sps

from openautotune.stats import BetaPosterior, NormalPosterior, Posterior, StudentTPosterior

_SQRT_2PI = math.sqrt(2.0 * math.pi)
_OWN_OFFSETS = (-40, -20, -10, -6, -4, -3, -2, -1, -0.5, 0, 0.5, 1, 2, 3, 4, 6, 10, 20, 40)
_OTHER_OFFSETS = (-40, -12, -6, -3, -1.5, 0, 1.5, 3, 6, 12, 40)

Density = Callable[[float], float]
Beats = Callable[[float], np.ndarray]


def _beta_density(a: float, b: float) -> Density:
    mu = a / (a + b)
    log_at_mu = math.log(float(sps.beta.pdf(mu, a, b)))  # Boost's density; scipy's logpdf is the naive formula

    def pdf(x: float) -> float:
        if not 0.0 <= x <= 1.0:
            return 0.0
        # log f(x) - log f(mu), with log1p of small relative steps so nothing large cancels.
        log_ratio = 0.0
        if a != 1.0:
            if x == 0.0:
                return 0.0
            log_ratio += (a - 1.0) * math.log1p((x - mu) / mu)
        if b != 1.0:
            if x == 1.0:
                return 0.0
            log_ratio += (b - 1.0) * math.log1p(-(x - mu) / (1.0 - mu))
        return math.exp(log_at_mu + log_ratio)

    return pdf


def _normal_density(loc: float, scale: float) -> Density:
    def pdf(x: float) -> float:
        z = (x - loc) / scale
        return math.exp(-0.5 * z * z) / (_SQRT_2PI * scale)

    return pdf


def _t_density(df: float, loc: float, scale: float) -> Density:
    log_const = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi) - math.log(scale)

    def pdf(x: float) -> float:
        z = (x - loc) / scale
        return math.exp(log_const - (df + 1) / 2 * math.log1p(z * z / df))

    return pdf


def _model(
    posteriors: Sequence[Posterior], lower_is_better: bool
) -> tuple[list[Density], Beats, np.ndarray, np.ndarray, tuple[float, float]]:
    """Densities, a vectorised "chance each arm is beaten at x", centres, spreads and the support."""
    betas = [p for p in posteriors if isinstance(p, BetaPosterior)]
    normals = [p for p in posteriors if isinstance(p, NormalPosterior)]
    ts = [p for p in posteriors if isinstance(p, StudentTPosterior)]
    sign = -1.0 if lower_is_better else 1.0
    if len(betas) == len(posteriors):
        a = np.array([p.alpha for p in betas])
        b = np.array([p.beta for p in betas])
        centre = a / (a + b)
        spread = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        incomplete = special.betaincc if lower_is_better else special.betainc

        def beta_beats(x: float) -> np.ndarray:
            return np.asarray(incomplete(a, b, min(max(x, 0.0), 1.0)), dtype=float)

        densities = [_beta_density(float(x), float(y)) for x, y in zip(a, b, strict=True)]
        return densities, beta_beats, centre, spread, (0.0, 1.0)
    if len(normals) == len(posteriors):
        loc = np.array([p.loc for p in normals])
        scale = np.array([p.scale for p in normals])

        def normal_beats(x: float) -> np.ndarray:
            return np.asarray(special.ndtr(sign * (x - loc) / scale), dtype=float)

        densities = [_normal_density(float(m), float(s)) for m, s in zip(loc, scale, strict=True)]
        return densities, normal_beats, loc, scale, (-math.inf, math.inf)
    if len(ts) == len(posteriors):
        df = np.array([p.df for p in ts])
        loc = np.array([p.loc for p in ts])
        scale = np.array([p.scale for p in ts])

        def t_beats(x: float) -> np.ndarray:
            return np.asarray(special.stdtr(df, sign * (x - loc) / scale), dtype=float)

        densities = [_t_density(float(d), float(m), float(s)) for d, m, s in zip(df, loc, scale, strict=True)]
        return densities, t_beats, loc, scale, (-math.inf, math.inf)
    raise TypeError("the reference handles one family at a time")


def reference_pob(posteriors: Sequence[Posterior], *, lower_is_better: bool = False) -> np.ndarray:
    densities, beats, centre, spread, support = _model(posteriors, lower_is_better)
    # Breakpoints: dense around the integrated arm, coarser around the others (where their F_j turns).
    others = np.unique([c + o * s for c, s in zip(centre, spread, strict=True) for o in _OTHER_OFFSETS])
    out = np.zeros(len(posteriors))
    for i, pdf in enumerate(densities):

        def integrand(x: float, i: int = i, pdf: Density = pdf) -> float:
            f = pdf(x)
            if f == 0.0:
                return 0.0
            chance = beats(x)
            return f * float(np.prod(chance[:i])) * float(np.prod(chance[i + 1 :]))

        # Arm i's density is negligible beyond 40 spreads of its centre, except in a t's heavy
        # tails, which the two tail integrals (to the support's ends) pick up.
        lo = max(support[0], float(centre[i] - 40 * spread[i]))
        hi = min(support[1], float(centre[i] + 40 * spread[i]))
        own = [centre[i] + o * spread[i] for o in _OWN_OFFSETS]
        points = np.unique(np.concatenate([own, others]))
        points = points[(points > lo) & (points < hi)]
        limit = 20 * points.size + 200
        total = integrate.quad(integrand, lo, hi, points=points, epsabs=1e-15, epsrel=1e-12, limit=limit)[0]
        for a, b in ((support[0], lo), (hi, support[1])):
            if a < b:
                total += integrate.quad(integrand, a, b, epsabs=1e-15, epsrel=1e-12, limit=500)[0]
        out[i] = total
    return out
