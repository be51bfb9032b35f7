"""`python -m openautotune` runs the CLI."""

from openautotune.cli import main

main()
