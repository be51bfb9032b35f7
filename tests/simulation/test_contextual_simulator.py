"""The contextual simulator on the real path (a SQLite file, ingestion of SDK batches, hourly engine updates on
a FixedClock, the published `cmab_configs` entry evaluated as the core SDK evaluates it).

- Three segments (countries) that each prefer a different variant: once a policy is trained, its regret
  per user against the per-user oracle is well below a uniform split's and below the best single variant's,
  for several seeds; at the end the published policy's true value beats the best single variant's.
- A seed reproduces its run hour by hour.
- Spec parsing says what is wrong; the shipped example spec parses and runs through `openautotune simulate`.
- The simulated core SDK serves what the published policy says; a short run works on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from openautotune.cli import app as cli_app
from openautotune.simulation.contextual import ContextualConfig, ContextualResult
from openautotune.simulation.contextual_world import ContextualSpec
from openautotune.simulation.wiring import run_contextual_simulation

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "contextual_simulation.json"

SEGMENTED: dict[str, Any] = {
    "attributes": [
        {"name": "country", "categorical": {"US": 0.4, "DE": 0.35, "FR": 0.25}},
        {"name": "age", "uniform": {"low": 18, "high": 70}, "decimals": 0},
    ],
    "variants": [
        {"name": "us_style", "intercept": -1.8, "coefficients": {"country": {"US": 1.0}}},
        {"name": "de_style", "intercept": -2.2, "coefficients": {"country": {"DE": 1.6}}},
        {"name": "fr_style", "intercept": -2.4, "coefficients": {"country": {"FR": 1.8}, "age": 0.005}},
    ],
}


def _run(seed: int, users_per_hour: int = 300, hours: int = 12) -> ContextualResult:
    config = ContextualConfig(
        ContextualSpec.from_json(SEGMENTED), users_per_hour=users_per_hour, hours=hours, seed=seed, reference_users=5000
    )
    return run_contextual_simulation(config, exploration_window="1hr")


def _per_user(result: ContextualResult) -> tuple[float, float, float]:
    trained = result.trained_hours()
    users = sum(hour.users for hour in trained)
    return (
        sum(hour.regret for hour in trained) / users,
        sum(hour.best_single_regret for hour in trained) / users,
        sum(hour.uniform_regret for hour in trained) / users,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_trained_policy_beats_a_uniform_split_and_the_best_single_variant(seed: int) -> None:
    result = _run(seed)
    trained = result.trained_hours()
    assert len(trained) >= 9, "a policy is published from the second update on"
    assert trained[0].explore_share > trained[-1].explore_share > 0, "the explore slice shrinks as data grows"
    policy, best_single, uniform = _per_user(result)
    values = result.values
    print(
        f"\nseed {seed}: regret per user after exploration: policy {policy:.4f}, best single {best_single:.4f}, "
        f"uniform {uniform:.4f}; true values: personalized {values.personalized:.4f} (exploit "
        f"{values.exploit:.4f}), best single {values.best_single:.4f}, uniform {values.uniform:.4f}, "
        f"oracle {values.oracle:.4f}; engine's DR estimates {values.estimated}"
    )
    assert policy < 0.4 * uniform
    assert policy < 0.4 * best_single
    assert values.best_single + 0.02 < values.personalized <= values.exploit + 1e-12 <= values.oracle + 1e-12
    assert values.uniform + 0.01 < values.best_single and result.best_single == 0  # us_style is the best single one
    assert set(values.estimated) == {"personalized", "bestSingle", "uniform"}
    # The regrets add up: cumulative equals the sum of the hours.
    assert result.regret == pytest.approx(sum(hour.regret for hour in result.hours))
    assert result.hours[-1].cumulative_uniform_regret == pytest.approx(result.uniform_regret)


def test_a_seed_reproduces_its_run() -> None:
    first, again = _run(7, users_per_hour=150, hours=4), _run(7, users_per_hour=150, hours=4)
    assert first.hours == again.hours and first.values == again.values
    other = _run(8, users_per_hour=150, hours=4)
    assert other.hours != first.hours


def test_true_probabilities_follow_the_logistic_model() -> None:
    spec = ContextualSpec.from_json(SEGMENTED)
    users = [
        {"userID": "a", "country": "FR", "custom": {"age": 40}},
        {"userID": "b", "country": "US", "custom": {"age": 20}},
    ]
    p = spec.probabilities(users)
    logistic = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    assert p[0] == pytest.approx([logistic(-1.8), logistic(-2.2), logistic(-2.4 + 1.8 + 0.005 * 40)])
    assert p[1] == pytest.approx([logistic(-1.8 + 1.0), logistic(-2.2), logistic(-2.4 + 0.005 * 20)])
    drawn = spec.draw_users(np.random.default_rng(0), ["u1", "u2"])
    assert drawn[0]["country"] in {"US", "DE", "FR"} and isinstance(drawn[0]["custom"]["age"], int)


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"attributes": [], "variants": []}, "attributes"),
        ({**SEGMENTED, "variants": SEGMENTED["variants"][:1]}, "at least two"),
        ({**SEGMENTED, "attributes": [{"name": "age", "normal": {"mean": 1}}]}, "exactly mean and sd"),
        ({**SEGMENTED, "attributes": [{"name": "x", "normal": {"mean": 0, "sd": 1}, "uniform": {}}]}, "exactly one"),
        ({**SEGMENTED, "attributes": [{"name": "country", "uniform": {"low": 0, "high": 1}}]}, "categorical"),
        (
            {**SEGMENTED, "variants": [{"name": "a", "coefficients": {"height": 1}}, {"name": "b"}]},
            "no such attribute",
        ),
        (
            {**SEGMENTED, "variants": [{"name": "a", "coefficients": {"country": {"XX": 1}}}, {"name": "b"}]},
            "keyed by the attribute's values",
        ),
        ({**SEGMENTED, "variants": [{"name": "a"}, {"name": "a"}]}, "distinct"),
    ],
)
def test_a_broken_spec_says_what_is_wrong(broken: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ContextualSpec.from_json(broken)


def test_cli_runs_the_example_spec() -> None:
    ContextualSpec.from_json(json.loads(EXAMPLE.read_text()))
    result = CliRunner().invoke(
        cli_app,
        [
            "simulate",
            "--contextual",
            str(EXAMPLE),
            "--users-per-hour",
            "120",
            "--hours",
            "3",
            "--exploration-window",
            "1hr",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "personalized" in result.output and "best single" in result.output and "uniform" in result.output
    inline = CliRunner().invoke(cli_app, ["simulate", "--contextual", '{"attributes": []}', "--hours", "1"])
    assert inline.exit_code == 2 and "attributes" in inline.output


def test_sdk_traffic_serves_what_the_published_policy_says(tmp_path: Path) -> None:
    """The simulated core SDK's exploit choices equal the server model's argmax for the same version (which
    tests/e2e/test_contextual_weights_core.py checks against the real core SDK), explore traffic takes about
    the published sample rate, and ingestion stored the explore flag and the version with each unit."""
    import sqlalchemy as sa

    from openautotune.clock import FixedClock
    from openautotune.contextual.training import model_from_json
    from openautotune.simulation.contextual import simulate_contextual
    from openautotune.simulation.wiring import SdkContextualTraffic, start_contextual_autotune
    from openautotune.store import autotunes as autotune_store
    from openautotune.store import contextual as contextual_store
    from openautotune.store import migrate
    from openautotune.store.database import Database
    from openautotune.store.ingest_tables import units_table

    db = Database.from_url(f"sqlite:///{tmp_path / 'sim.db'}")
    migrate.upgrade(db.engine)
    try:
        config = ContextualConfig(ContextualSpec.from_json(SEGMENTED), users_per_hour=200, hours=4, seed=3)
        clock = FixedClock(config.start_ms)
        autotune_id = start_contextual_autotune(db, clock, config, exploration_window="1hr")
        traffic = SdkContextualTraffic(db, clock, seed=3)
        result = simulate_contextual(db, clock, autotune_id, config, traffic)
        with db.read() as conn:
            autotune = autotune_store.get(conn, autotune_id)
            assert autotune is not None
            policies = contextual_store.policies_of_run(conn, autotune_id, autotune.created_ms, autotune.run)
            stored = conn.execute(
                sa.select(units_table.c.explore, units_table.c.allocation_version).where(
                    units_table.c.autotune_id == autotune_id
                )
            ).all()
        assert len(stored) == result.users
        explored_hours = [h for h in result.hours if h.policy_version is None]
        assert sum(1 for explore, _ in stored if explore) == sum(
            round(h.explore_share * h.users) for h in result.hours
        ) and all(h.explore_share == 1.0 for h in explored_hours)
        latest = policies[max(policies)]
        server = model_from_json(latest.model)
        users = config.spec.draw_users(np.random.default_rng(99), [f"probe-{i}" for i in range(2000)])
        served = traffic.assign(autotune, users)
        assert {s.version for s in served} == {latest.version}
        greedy = server.policy.greedy(server.encoding.transform(users))
        exploit = [(s, int(k)) for s, k in zip(served, greedy, strict=True) if not s.explored]
        assert all(s.variant_id == server.variant_ids[k] for s, k in exploit)
        share = 1 - len(exploit) / len(users)
        assert abs(share - latest.sample_rate) < 0.05, (share, latest.sample_rate)
    finally:
        db.dispose()


def test_runs_on_both_databases(database_url: str) -> None:
    config = ContextualConfig(ContextualSpec.from_json(SEGMENTED), users_per_hour=150, hours=4, seed=4)
    result = run_contextual_simulation(config, database_url=database_url, exploration_window="1hr")
    assert [h.policy_version is not None for h in result.hours] == [False, False, True, True]
    assert result.values.policy_version is not None and result.values.estimated
