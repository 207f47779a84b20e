"""Minimal stand-in for NASLib: only what 2022 zero-cost competition submissions import."""
