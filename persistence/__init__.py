"""Songbook's data layer: models, the unit of work, repositories and domain errors."""
