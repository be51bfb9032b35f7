"""Posterior distributions of one variant's rate or mean.

Three families cover the engine's model (spec: engine.md, "Model"):

- ``BetaPosterior``: an occurrence metric, Beta(1 + successes, 1 + failures) (uniform prior).
- ``NormalPosterior``: a value metric with at least ``NORMAL_MIN_UNITS`` (30) units,
  Normal(sample mean, sample variance / n).
- ``StudentTPosterior``: a value metric with 2..29 units, a location-scale Student-t with n - 1
  degrees of freedom, location = sample mean, scale = sqrt(s^2 / n).

Every posterior is a frozen dataclass of plain floats, vectorised over numpy arrays, and can be
turned into a plain dict (``params()``) and rebuilt from it (``posterior_from_params``), so an
update record alone is enough to recompute a decision. The P(best) grid (pob.py) takes its
breakpoints from each posterior's ``mean``, ``ppf``/``isf`` (quantiles) and ``support``.

Edge cases of the value metric (decided here, once):

- n = 0: nothing is known, so the posterior is the weak prior ``WeakPrior`` (default
  Normal(0, 1e6)): wide enough that any plausible mean is inside, so an empty variant keeps an
  exploration share instead of being ruled out.
- n = 1: the location is the one value, but a spread cannot be estimated from one value, so the
  scale is the weak prior's scale: Normal(x, prior scale).
- zero sample variance (all values equal, e.g. every unit scored 0): the spread observed is zero,
  but a point mass would leave P(best) undefined for ties. The scale is floored at
  ``SCALE_FLOOR_REL * max(1, |mean|)`` (1e-6 relative): a near-point mass at the observed mean.
  Identical near-point masses are identical distributions, so they split P(best) equally.
  Why 1e-6 and not smaller: a float resolves x only to ~2e-16 * |x|, so a posterior of relative
  width 1e-9 would be seen through a standardised-score grain of ~2e-7 and P(best) could not be
  trusted to 1e-8; at 1e-6 the grain is ~2e-10. A real posterior that narrow (the mean known to a
  millionth of itself) does not occur for per-unit metrics; if it did, the floor only widens it,
  which makes a winner harder, never easier, to declare.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final, Protocol

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

FloatArray = npt.NDArray[np.float64]
ParamValue = str | float
Params = dict[str, ParamValue]

NORMAL_MIN_UNITS: Final = 30
"""From this many units on, the value posterior is Normal; below it, Student-t (spec)."""

SCALE_FLOOR_REL: Final = 1e-6
"""Smallest scale of a value posterior, relative to max(1, |mean|): keeps zero-variance arms defined."""


def _as_float_array(values: object) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


class Posterior(Protocol):
    """What the rest of ``stats`` needs from a posterior (all three families implement it)."""

    family: ClassVar[str]

    @property
    def mean(self) -> float: ...

    @property
    def support(self) -> tuple[float, float]: ...

    def pdf(self, x: npt.ArrayLike) -> FloatArray: ...

    def cdf(self, x: npt.ArrayLike) -> FloatArray: ...

    def sf(self, x: npt.ArrayLike) -> FloatArray: ...

    def ppf(self, q: npt.ArrayLike) -> FloatArray: ...

    def isf(self, q: npt.ArrayLike) -> FloatArray: ...

    def interval(self, level: float = 0.95) -> tuple[float, float]: ...

    def sample(self, size: int, rng: np.random.Generator) -> FloatArray: ...

    def params(self) -> Params: ...


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a positive finite number, got {value}")


class _ScipyFamily:
    """The distribution functions of a posterior, delegated to one scipy family.

    Each posterior names its scipy distribution and the arguments (shape, loc, scale) it passes;
    the five vectorised functions and the credible interval are the same code for all three.
    """

    __slots__ = ()
    _scipy: ClassVar[sps.rv_continuous]

    def _args(self) -> tuple[float, ...]:
        raise TypeError(f"{type(self).__name__} must define _args")

    def pdf(self, x: npt.ArrayLike) -> FloatArray:
        return _as_float_array(self._scipy.pdf(x, *self._args()))

    def cdf(self, x: npt.ArrayLike) -> FloatArray:
        return _as_float_array(self._scipy.cdf(x, *self._args()))

    def sf(self, x: npt.ArrayLike) -> FloatArray:
        return _as_float_array(self._scipy.sf(x, *self._args()))

    def ppf(self, q: npt.ArrayLike) -> FloatArray:
        return _as_float_array(self._scipy.ppf(q, *self._args()))

    def isf(self, q: npt.ArrayLike) -> FloatArray:
        return _as_float_array(self._scipy.isf(q, *self._args()))

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        if not 0.0 < level < 1.0:
            raise ValueError(f"credible level must be in (0, 1), got {level}")
        tail = (1.0 - level) / 2.0
        # The upper end comes from the inverse survival function: 1 - tail loses digits for tiny tails.
        return float(self.ppf(tail)), float(self.isf(tail))


@dataclass(frozen=True, slots=True)
class BetaPosterior(_ScipyFamily):
    """Beta(alpha, beta) posterior of a conversion rate, on [0, 1]."""

    alpha: float
    beta: float
    family: ClassVar[str] = "beta"
    _scipy: ClassVar[sps.rv_continuous] = sps.beta

    def __post_init__(self) -> None:
        _positive("alpha", self.alpha)
        _positive("beta", self.beta)

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def support(self) -> tuple[float, float]:
        return (0.0, 1.0)

    def _args(self) -> tuple[float, ...]:
        return (self.alpha, self.beta)

    def sample(self, size: int, rng: np.random.Generator) -> FloatArray:
        return rng.beta(self.alpha, self.beta, size=size)

    def params(self) -> Params:
        return {"family": self.family, "alpha": self.alpha, "beta": self.beta}


@dataclass(frozen=True, slots=True)
class NormalPosterior(_ScipyFamily):
    """Normal(loc, scale) posterior of a mean."""

    loc: float
    scale: float
    family: ClassVar[str] = "normal"
    _scipy: ClassVar[sps.rv_continuous] = sps.norm

    def __post_init__(self) -> None:
        if not math.isfinite(self.loc):
            raise ValueError(f"loc must be finite, got {self.loc}")
        _positive("scale", self.scale)

    @property
    def mean(self) -> float:
        return self.loc

    @property
    def support(self) -> tuple[float, float]:
        return (-math.inf, math.inf)

    def _args(self) -> tuple[float, ...]:
        return (self.loc, self.scale)

    def sample(self, size: int, rng: np.random.Generator) -> FloatArray:
        return rng.normal(self.loc, self.scale, size=size)

    def params(self) -> Params:
        return {"family": self.family, "loc": self.loc, "scale": self.scale}


@dataclass(frozen=True, slots=True)
class StudentTPosterior(_ScipyFamily):
    """Location-scale Student-t posterior of a mean (few units: the variance itself is uncertain)."""

    df: float
    loc: float
    scale: float
    family: ClassVar[str] = "student_t"
    _scipy: ClassVar[sps.rv_continuous] = sps.t

    def __post_init__(self) -> None:
        _positive("df", self.df)
        if not math.isfinite(self.loc):
            raise ValueError(f"loc must be finite, got {self.loc}")
        _positive("scale", self.scale)

    @property
    def mean(self) -> float:
        # With df <= 1 the t has no mean; its centre (median) is the sample mean, which is what a
        # result should show.
        return self.loc

    @property
    def support(self) -> tuple[float, float]:
        return (-math.inf, math.inf)

    def _args(self) -> tuple[float, ...]:
        return (self.df, self.loc, self.scale)

    def sample(self, size: int, rng: np.random.Generator) -> FloatArray:
        return self.loc + self.scale * rng.standard_t(self.df, size=size)

    def params(self) -> Params:
        return {"family": self.family, "df": self.df, "loc": self.loc, "scale": self.scale}


@dataclass(frozen=True, slots=True)
class WeakPrior:
    """The fallback for a value variant with fewer than 2 units (see the module docstring)."""

    loc: float = 0.0
    scale: float = 1e6

    def __post_init__(self) -> None:
        if not math.isfinite(self.loc):
            raise ValueError(f"loc must be finite, got {self.loc}")
        _positive("scale", self.scale)


DEFAULT_WEAK_PRIOR: Final = WeakPrior()


def beta_posterior(successes: float, units: float) -> BetaPosterior:
    """Beta(1 + s, 1 + n - s): a uniform prior updated with ``successes`` out of ``units``."""
    if units < 0 or not 0 <= successes <= units:
        raise ValueError(f"need 0 <= successes <= units, got successes={successes}, units={units}")
    return BetaPosterior(alpha=1.0 + successes, beta=1.0 + (units - successes))


def normal_posterior(
    n: float, total: float, total_sq: float, *, prior: WeakPrior = DEFAULT_WEAK_PRIOR
) -> NormalPosterior | StudentTPosterior:
    """Posterior of a mean from ``n`` values with sum ``total`` and sum of squares ``total_sq``.

    Normal(mean, s^2 / n) from 30 units on, Student-t with n - 1 df below; n < 2 and zero variance
    follow the rules in the module docstring.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not (math.isfinite(total) and math.isfinite(total_sq)) or total_sq < 0.0:
        raise ValueError(f"sums must be finite and total_sq >= 0, got total={total}, total_sq={total_sq}")
    if n == 0:
        return NormalPosterior(loc=prior.loc, scale=prior.scale)
    mean = total / n
    if n == 1:
        return NormalPosterior(loc=mean, scale=prior.scale)
    # Sums come from SQL, so the variance is recovered from them; rounding can push a true zero
    # slightly below 0, hence the clamp.
    variance = max(0.0, (total_sq - n * mean * mean) / (n - 1))
    floor = SCALE_FLOOR_REL * max(1.0, abs(mean))
    scale = max(math.sqrt(variance / n), floor)
    if n < NORMAL_MIN_UNITS:
        return StudentTPosterior(df=float(n - 1), loc=mean, scale=scale)
    return NormalPosterior(loc=mean, scale=scale)


_FAMILIES: Final[Mapping[str, tuple[str, ...]]] = {
    BetaPosterior.family: ("alpha", "beta"),
    NormalPosterior.family: ("loc", "scale"),
    StudentTPosterior.family: ("df", "loc", "scale"),
}


def posterior_from_params(params: Mapping[str, ParamValue]) -> Posterior:
    """Rebuild a posterior from ``params()`` output (an audit record), rejecting anything else."""
    family = params.get("family")
    if not isinstance(family, str) or family not in _FAMILIES:
        raise ValueError(f"unknown posterior family: {family!r}")
    expected = _FAMILIES[family]
    if set(params) != {"family", *expected}:
        raise ValueError(f"{family} posterior needs exactly {expected}, got {sorted(params)}")
    values: dict[str, float] = {}
    for key in expected:
        value = params[key]
        if isinstance(value, str | bool):
            raise ValueError(f"{key} must be a number, got {value!r}")
        values[key] = float(value)
    if family == BetaPosterior.family:
        return BetaPosterior(alpha=values["alpha"], beta=values["beta"])
    if family == NormalPosterior.family:
        return NormalPosterior(loc=values["loc"], scale=values["scale"])
    return StudentTPosterior(df=values["df"], loc=values["loc"], scale=values["scale"])
