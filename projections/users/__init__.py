"""Read models of the users area (``views``) and the queries over them (``queries``)."""
