"""Falco's fields: the catalog (names, types, flags, extractors) per source."""
