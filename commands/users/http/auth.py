"""Registration, verification, sessions and passwords."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from commands.http.callers import GuestCart
from commands.http.deps import CurrentUser, IdempotencyKey
from commands.http.parsed_body import ParsedBodyRoute
from commands.http.responses import respond, respond_idempotently, respond_written
from commands.ports import StoredResponse
from commands.users.accounts import LoggedIn
from commands.users.http.deps import Services, limit_attempts
from commands.users.http.schemas import (
    Credentials,
    EmailBody,
    LinkTokenBody,
    PasswordChange,
    PasswordResetConfirmation,
    RefreshBody,
    Registration,
    TokensOut,
    WrittenOut,
)
from domain.positions import Position, format_positions

router = APIRouter(prefix="/auth", tags=["auth"], route_class=ParsedBodyRoute)


@router.post("/register", status_code=201, response_model=WrittenOut)
def register(body: Registration, services: Services, idempotency: IdempotencyKey) -> JSONResponse:
    """Create a customer account; a verification link goes to the address."""

    return respond_idempotently(
        idempotency,
        body,
        lambda: services.users.register(idempotency.new_id(), body.email, body.password, body.name),
    )


@router.post("/verify-email", response_model=WrittenOut)
def verify_email(body: LinkTokenBody, services: Services) -> JSONResponse:
    return respond_written(services.users.verify_email(body.token))


@router.post("/verify-email/resend", status_code=202, response_class=Response)
def resend_verification(body: EmailBody, request: Request, services: Services) -> Response:
    """Always 202, whether or not the address has an account."""
    limits = services.limits
    limit_attempts(
        request, services, "verify", body.email, limits.reset_per_account, limits.reset_per_address
    )
    services.users.resend_verification(body.email)
    return Response(status_code=202)


@router.post("/login", response_model=TokensOut)
def login(
    body: Credentials,
    request: Request,
    services: Services,
    guest_cart: GuestCart,
) -> JSONResponse:
    """With ``X-Cart-Token``, the guest cart's lines move into the account's cart
    (the answer's ``position`` then covers the cart too)."""
    limits = services.limits
    limit_attempts(
        request, services, "login", body.email, limits.login_per_account, limits.login_per_address
    )
    logged_in = services.users.login(body.email, body.password)
    if guest_cart is None:
        return _tokens(logged_in)
    merged = services.carts.merge(logged_in.user_id, guest_cart)
    return _tokens(logged_in, merged.positions)


@router.post("/refresh", response_model=TokensOut)
def refresh(body: RefreshBody, services: Services) -> JSONResponse:
    """Exchange a refresh token for new tokens. Each refresh token works once:
    presenting a used one signs the whole session out."""
    return _tokens(services.users.refresh(body.refresh_token))


@router.post("/logout", response_model=WrittenOut)
def logout(principal: CurrentUser, services: Services) -> JSONResponse:
    """End this session: its access and refresh tokens stop working."""
    return respond_written(services.users.logout(principal.session_id))


@router.post("/password-reset", status_code=202, response_class=Response)
def request_password_reset(body: EmailBody, request: Request, services: Services) -> Response:
    """Always 202, whether or not the address has an account."""
    limits = services.limits
    limit_attempts(
        request, services, "reset", body.email, limits.reset_per_account, limits.reset_per_address
    )
    services.users.request_password_reset(body.email)
    return Response(status_code=202)


@router.post("/password-reset/confirm", response_model=WrittenOut)
def reset_password(body: PasswordResetConfirmation, services: Services) -> JSONResponse:
    """Set a new password with the emailed token; every session signs out."""
    return respond_written(services.users.reset_password(body.token, body.new_password))


@router.post("/password", response_model=WrittenOut)
def change_password(
    body: PasswordChange, principal: CurrentUser, services: Services
) -> JSONResponse:
    """Change the password (the current one is asked again); other sessions sign out."""
    return respond_written(
        services.users.change_password(principal.user_id, body.current_password, body.new_password)
    )


def _tokens(logged_in: LoggedIn, also: Sequence[Position] = ()) -> JSONResponse:
    tokens = logged_in.tokens
    positions = [p for p in (logged_in.position, *also) if p is not None]
    body = TokensOut(
        user_id=str(logged_in.user_id),
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
        position=format_positions(positions) or None,
    )
    return respond(StoredResponse(200, body.model_dump()))
