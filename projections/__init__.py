"""The read models. Each bounded area is a sub-package of the same shape: its views
(a ``View`` with its tables and the logs it ``follows``, and the projection that
writes it) and the queries the read API asks of them.

What sits here at the top is the shared kernel of every read model: the projection
engine (``engine``), generations and their swap (``generations``), tracked
positions (``positions``), keyset cursors (``cursors``), dead letters
(``dead_letters``) and the NUL guard on view connections (``nul_safe``)."""
