"""The read API: thin FastAPI query endpoints over the projections."""
