"""Parquet files (pyarrow): the export of the event logs (``event_files``)."""
