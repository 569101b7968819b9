"""Read models of the catalog area, the queries over them, the search port with its
vocabulary (``search``) and its PostgreSQL implementation, the product cache's ports
and the change feed."""
