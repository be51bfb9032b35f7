"""openautotune: self-hosted Bayesian bandits that speak Statsig's Autotune APIs."""

__version__ = "0.1.0"
