"""Pure domain: autotunes, variants, runs, windows, lifecycle and errors. No I/O, no clock."""
