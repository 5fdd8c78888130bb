"""Data contracts: the schemas of every table that crosses a stage boundary, one source of truth."""
