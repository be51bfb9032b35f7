"""`serve` answers fast because the app starts without the heavy libraries; this keeps it that way.

The engine (numpy, scipy), the charts (plotly's figure classes) and Alembic load when first needed
(docs/configuration.md, `serve`); an import at module level anywhere on the app's path would bring
them back into every server start (bench/startup.py measures the cost).
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("numpy", "scipy", "alembic", "plotly.graph_objects", "sklearn", "cryptography", "duckdb")


def test_the_app_and_the_serve_command_import_no_heavy_library() -> None:
    probe = (
        "import sys; import openautotune.api.app, openautotune.cli.serve, openautotune.engine.scheduler; "
        f"print(','.join(name for name in {HEAVY!r} if name in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"imported at start: {done.stdout.strip()}"
