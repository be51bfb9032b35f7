"""Use cases shared by the Console API, the dashboard and the CLI."""
