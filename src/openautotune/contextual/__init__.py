"""Statistics of contextual autotunes: features, per-variant Bayesian models, published weights,
policies and their propensities, and off-policy value estimates (spec: contextual.md)."""
