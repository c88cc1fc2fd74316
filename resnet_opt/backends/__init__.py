"""Backends as units: one module per backend (`backends/<name>.py`) declares every part of it,
and `registry` is the one table of them (ARCHITECTURE.md, "Where a new backend goes")."""
