"""Verification, game days and reports: what a run was expected to show, what it showed,
whether the system recovered, and the verdict people read first."""
