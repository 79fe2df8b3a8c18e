"""Cloud billing readers: one module per vendor family, the shared contract in common."""
