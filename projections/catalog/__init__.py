"""Read models of the catalog area: the views (one module per read model, listed in
``views``), the queries over them (``product_queries``, ``category_queries``,
``stock_queries``, ``review_queries``), the search port with its vocabulary
(``search``) and its PostgreSQL implementation (``search_postgres`` over
``search_queries``), the product cache's ports and the change feed."""
