"""What the test suites share that is not a fixture: plain functions and classes,
imported by the tests and by the ``conftest.py`` files whose fixtures call them.

- ``polling``: ``eventually``, the one way to wait for what happens after an answer.
- ``server``: ``shop run`` started, restarted and stopped as an operator does it.
- ``answers``: reading an HTTP answer (a write's id and position, a refusal).
- ``users_client``, ``catalog_client``, ``ordering_client``: the API's routes by
  area, as the end-to-end suites (tests/e2e, tests/e2e_own_server, tests/e2e_scaled,
  tests/fuzz) drive them.
- ``side_door``: what the database holds, to prove that a refusal wrote nothing.

Fixtures stay in the ``conftest.py`` files; a helper that one test module alone
uses stays in that module.
"""
