"""SES bounce and complaint feedback over HTTP: ``POST /webhooks/ses-feedback``,
the HTTPS subscription of the SNS topics SES publishes to.

SNS sends its JSON as ``text/plain``, so the body is read as bytes here (the request
edge bounds it but parses only JSON content types). 204 when handled; 400 for what is
not an SNS message, 403 for a signature, certificate or topic that does not check
out, 503 when SNS itself could not be reached (SNS then delivers again). A refusal
has changed nothing. No bearer token: the SNS signature is the authentication.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from commands.http.parsed_body import ParsedBodyRoute
from commands.notifications.feedback import handle
from commands.notifications.http.deps import Services

router = APIRouter(prefix="/webhooks", tags=["notifications"], route_class=ParsedBodyRoute)

_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


@router.post(
    "/ses-feedback",
    status_code=204,
    response_class=Response,
    responses={
        403: {
            "description": "The signature, its certificate or the topic is not trusted",
            "content": _PROBLEM,
        }
    },
)
async def ses_feedback(request: Request, services: Services) -> Response:
    """An SNS message for a topic SES publishes bounces and complaints to: verified,
    then a permanent bounce suppresses the address for all mail, a complaint for
    marketing; a subscription confirmation is confirmed."""
    body = await request.body()
    # The certificate fetch, the confirmation GET and Postgres all block.
    await run_in_threadpool(handle, body, services.sns, services.suppressions)
    return Response(status_code=204)
