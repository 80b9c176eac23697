"""Shared test helpers (builders, fixture support and paths) imported by test modules in several folders."""
