"""The export of the event logs for ad hoc analysis (``shop export events``, ADR 0021):
every event decoded through its application's mapper, as rows of one stable schema
(``schema``), appended to files by the ``exporter`` from the last exported position;
and the port that runs SQL over what was exported (``queries``)."""
