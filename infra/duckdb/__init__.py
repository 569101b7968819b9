"""DuckDB: SQL over the Parquet export of the event logs (``event_queries``)."""
