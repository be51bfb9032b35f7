"""Rate limits per key: budgets, the limiters that enforce them, and where their counters live."""

from openautotune.service.rate_limits.budgets import Budget, parse_budgets
from openautotune.service.rate_limits.limiters import BatchedLimiter, ExactLimiter, Verdict

__all__ = ["BatchedLimiter", "Budget", "ExactLimiter", "Verdict", "parse_budgets"]
