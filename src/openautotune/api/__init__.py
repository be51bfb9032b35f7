"""HTTP faces: the Console API, the SDK endpoints, and error mapping."""
