"""Numerical helpers shared by several stages (one copy of each)."""
