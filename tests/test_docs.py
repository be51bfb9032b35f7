"""Every setting, endpoint and CLI command is documented (a change that skips the docs fails here)."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import typer

from openautotune.cli import app as cli_app
from openautotune.settings import ENV_PREFIX, Settings
from openautotune.testing import TestApp

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _all_docs() -> str:
    return "\n".join(path.read_text() for path in sorted(DOCS.glob("*.md")))


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    for field in fields(Settings):
        assert f"{ENV_PREFIX}{field.name.upper()}" in text, field.name


def _commands(app: typer.Typer, prefix: str = "") -> list[str]:
    names = [f"{prefix}{command.name or command.callback.__name__}".strip() for command in app.registered_commands]  # type: ignore[union-attr]
    for group in app.registered_groups:
        assert group.typer_instance is not None
        names += _commands(group.typer_instance, f"{prefix}{group.name} ")
    return names


def test_every_cli_command_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    for command in _commands(cli_app):
        assert f"openautotune {command}" in text, command


def _path_pattern(path: str) -> str:
    """`/a/{id}/b` matches `/a/{anything}/b`: docs may name a placeholder differently."""
    return r"\{[^}]+\}".join(re.escape(part) for part in re.split(r"\{[^}]+\}", path))


def test_every_endpoint_is_documented(sqlite_url: str) -> None:
    from openautotune.testing import make_test_app

    made: TestApp = make_test_app(sqlite_url)
    text = _all_docs()
    paths = list(made.app.openapi()["paths"])
    assert "/console/v1/autotunes/{id}/start" in paths
    missing = [path for path in paths if not re.search(_path_pattern(path), text)]
    assert not missing, f"not in docs/*.md: {missing}"
    made.db.dispose()
