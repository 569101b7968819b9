"""Adapters on the local file system."""
