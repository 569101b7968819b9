"""Schema-driven fuzzing of the whole API (schemathesis): every operation in
``/openapi.json``, anonymous and with a customer's, a seller's and an admin's token.
No answer may be a 5xx, and every answer must be as documented: its status, its
content type, its headers and its body's schema (problem+json included).

Generated requests are valid and invalid by the schema, half of the valid ones
naming ids that exist. The budget is ``EXAMPLES`` requests per operation and auth
mode, derandomized so that CI sends the same requests on every run; raise it with
``EVENTSHOP_FUZZ_EXAMPLES`` for a deeper run (``--timeout`` then too). A failure is
not shrunk: the run goes on, and every distinct failure (operation, check, status)
is reported with the first request that showed it, as a curl command.
"""

from __future__ import annotations

import os
import time
from typing import Any, TypeAlias

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case as GenericCase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.errors import FailureGroup
from schemathesis.schemas import APIOperation as GenericOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz.conftest import MODES, Tally, Target

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("fuzz-server")]

Operation: TypeAlias = GenericOperation[Any, Any, Any, Any]
Case: TypeAlias = GenericCase[Operation]

EXAMPLES = int(os.environ.get("EVENTSHOP_FUZZ_EXAMPLES", "15"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
SESSION_ENDING = frozenset({"POST /auth/logout", "POST /users/me/deactivate"})
"""Fuzzed last in each mode: once they succeed, the mode's token stops working."""

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.generate],  # no shrinking: failures are collected, not minimized
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.parametrize("mode", MODES)
def test_every_answer_is_documented(mode: str, target: Target, tally: Tally) -> None:
    token = target.tokens[mode]
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    started = time.monotonic()
    failures: dict[tuple[str, int, str], str] = {}
    with requests.Session() as session:
        for operation in _operations(target):
            _fuzz(operation, target, session, headers, tally, failures)
    tally.seconds = time.monotonic() - started
    assert not failures, f"{len(failures)} distinct failure(s) as {mode}:\n\n" + "\n".join(
        failures.values()
    )


def _operations(target: Target) -> list[Operation]:
    loaded = list(target.schema.get_all_operations())
    unloadable = [result.err() for result in loaded if not isinstance(result, Ok)]
    assert not unloadable, unloadable
    found = [result.ok() for result in loaded if isinstance(result, Ok)]
    return sorted(found, key=lambda operation: operation.label in SESSION_ENDING)


def _fuzz(
    operation: Operation,
    target: Target,
    session: requests.Session,
    headers: dict[str, str],
    tally: Tally,
    failures: dict[tuple[str, int, str], str],
) -> None:
    @FUZZ_SETTINGS
    @given(case=_cases(operation, target.ids))
    def send(case: Case) -> None:
        response = case.call(base_url=target.base_url, session=session, headers=headers)
        tally.requests += 1
        tally.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            seen = (operation.label, response.status_code)
            titles = ", ".join(sorted(failure.title for failure in group.exceptions))
            failures.setdefault((*seen, titles), f"{operation.label} [{seen[1]}]: {group}")

    send()


def _cases(operation: Operation, ids: dict[str, str]) -> st.SearchStrategy[Case]:
    generated = [operation.as_strategy(mode) for mode in GenerationMode]
    names = [p.name for p in operation.path_parameters]
    known: dict[str, Any] = {name: ids[name] for name in names if name in ids}
    if known:
        existing = operation.as_strategy(GenerationMode.POSITIVE, path_parameters=known)
        generated.append(existing)
        generated.append(existing)  # as likely as the other two together
    return st.one_of(generated)
