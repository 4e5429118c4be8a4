"""The reference backend: a FastAPI app with a deterministic 7-phase startup."""
