"""Which SQS errors ``sqs_call`` treats as SQS being away (``TransientFailure``, so
the loops back off and retry) and which it leaves as they are (a set-up fault)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from commands.notifications.ports import TransientFailure
from infra.amazon.sqs_queue import sqs_call


def refusal(code: str, status: int) -> ClientError:
    answer: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(answer, "ReceiveMessage")


@pytest.mark.parametrize(
    "error",
    [
        refusal("RequestThrottled", 400),
        refusal("KmsThrottled", 400),
        refusal("OverLimit", 403),
        refusal("Whatever", 503),
        refusal("TooManyRequests", 429),
        EndpointConnectionError(endpoint_url="http://sqs"),
        ReadTimeoutError(endpoint_url="http://sqs"),
    ],
)
def test_sqs_away_is_transient(error: Exception) -> None:
    with pytest.raises(TransientFailure), sqs_call():
        raise error


@pytest.mark.parametrize("code", ["QueueDoesNotExist", "AccessDenied", "InvalidParameterValue"])
def test_a_set_up_fault_stays_what_it_is(code: str) -> None:
    with pytest.raises(ClientError), sqs_call():
        raise refusal(code, 400)
