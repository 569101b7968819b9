"""What an SES or SNS answer means for a delivery: throttling, a 5xx or a lost
connection is retried; any other refusal is for good."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from commands.notifications.ports import DeviceGone, PermanentFailure, TransientFailure

_TRANSIENT = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "Throttled",
        "TooManyRequestsException",
        "LimitExceededException",  # SES's sending quota: it refills
        "KMSThrottling",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "RequestTimeout",
    }
)


@contextmanager
def aws_errors(service: str, gone: Collection[str] = ()) -> Iterator[None]:
    """Maps the errors of the calls inside; a code in ``gone`` means the push
    endpoint no longer exists."""
    try:
        yield
    except ClientError as error:
        raise _failure(service, error, gone) from error
    except (ConnectionError, HTTPClientError) as error:  # refused, reset, timed out
        raise TransientFailure(f"{service}: {type(error).__name__}: {error}") from error


def _failure(
    service: str, error: ClientError, gone: Collection[str]
) -> PermanentFailure | TransientFailure:
    details = error.response.get("Error", {})
    code = str(details.get("Code", ""))
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    reason = f"{service} {code}: {details.get('Message', '')}"
    if code in gone:
        return DeviceGone(reason)
    if code in _TRANSIENT or status >= 500 or status == 429:
        return TransientFailure(reason)
    return PermanentFailure(reason)
