"""The engine: updates (matured aggregates -> stats -> lifecycle -> record), scheduler, simulator, results."""
