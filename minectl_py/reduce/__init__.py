"""Reductions: replay the event log into views (see docs/reductions.md)."""
