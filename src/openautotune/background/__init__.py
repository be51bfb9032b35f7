"""Background work that exactly one process runs among all that share a database (see `runner`)."""
