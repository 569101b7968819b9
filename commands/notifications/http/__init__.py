"""The notifications area's write API."""
