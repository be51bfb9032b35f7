"""Throwaway servers the tests start for themselves, so `make test` needs nothing set up beforehand."""
