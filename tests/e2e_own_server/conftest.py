"""End-to-end tests that each start a ``shop run`` of their own (configured for the
test, or killed by it), or the whole app in the test's own process
(``tests.support.in_process``). They run after tests/e2e has stopped its shared
server, so that two servers' connection pools never share the database's
``max_connections`` (100 by default) with a third."""

from tests.e2e.conftest import cast, client
from tests.support.own_postgres import own_postgres

__all__ = ["cast", "client", "own_postgres"]
