"""What the shop tells people, on which channel, and when: the notification kinds,
their categories, who may turn them off, and quiet hours. Pure: the policy
(``commands.notifications.policy``) applies these rules to the events it follows."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from domain.errors import DomainError


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    IN_APP = "in_app"


class Category(StrEnum):
    ACCOUNT = "account"  # account and security: always sent, whatever the preferences
    ORDER_UPDATES = "order_updates"
    MARKETING = "marketing"


class Kind(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"
    ORDER_CONFIRMED = "order_confirmed"
    ORDER_REJECTED = "order_rejected"
    PAYMENT_AUTHENTICATION = "payment_authentication"
    PAYMENT_FAILED = "payment_failed"
    ORDER_SHIPPED = "order_shipped"
    ORDER_DELIVERED = "order_delivered"
    ORDER_CANCELLED = "order_cancelled"
    RETURN_APPROVED = "return_approved"
    RETURN_REFUSED = "return_refused"
    REFUND_ISSUED = "refund_issued"
    LOW_STOCK = "low_stock"
    REVIEW_REPLY = "review_reply"
    ACCOUNT_DEACTIVATED = "account_deactivated"
    ROLE_CHANGED = "role_changed"


@dataclass(frozen=True)
class KindRules:
    category: Category
    channels: frozenset[Channel]
    """The channels this kind may use at all (a link mail goes by email only)."""
    urgent: bool = False
    """Urgent kinds ignore quiet hours."""
    to_address: bool = False
    """Sent to the address the event names, not to the account's current one
    (verification of a new address)."""


_EVERY = frozenset(Channel)
_EMAIL = frozenset({Channel.EMAIL})
_NOT_SMS = frozenset({Channel.EMAIL, Channel.PUSH, Channel.IN_APP})

RULES: Mapping[Kind, KindRules] = {
    Kind.VERIFY_EMAIL: KindRules(Category.ACCOUNT, _EMAIL, urgent=True),
    Kind.RESET_PASSWORD: KindRules(Category.ACCOUNT, _EMAIL, urgent=True),
    Kind.ACCOUNT_DEACTIVATED: KindRules(Category.ACCOUNT, _EMAIL, urgent=True),
    Kind.ROLE_CHANGED: KindRules(Category.ACCOUNT, frozenset({Channel.EMAIL, Channel.IN_APP})),
    Kind.PAYMENT_AUTHENTICATION: KindRules(Category.ORDER_UPDATES, _EVERY, urgent=True),
    Kind.ORDER_CONFIRMED: KindRules(Category.ORDER_UPDATES, _NOT_SMS),
    Kind.ORDER_REJECTED: KindRules(Category.ORDER_UPDATES, _EVERY),
    Kind.PAYMENT_FAILED: KindRules(Category.ORDER_UPDATES, _EVERY),
    Kind.ORDER_SHIPPED: KindRules(Category.ORDER_UPDATES, _EVERY),
    Kind.ORDER_DELIVERED: KindRules(Category.ORDER_UPDATES, _EVERY),
    Kind.ORDER_CANCELLED: KindRules(Category.ORDER_UPDATES, _EVERY),
    Kind.RETURN_APPROVED: KindRules(Category.ORDER_UPDATES, _NOT_SMS),
    Kind.RETURN_REFUSED: KindRules(Category.ORDER_UPDATES, _NOT_SMS),
    Kind.REFUND_ISSUED: KindRules(Category.ORDER_UPDATES, _EVERY),
    Kind.LOW_STOCK: KindRules(Category.ORDER_UPDATES, frozenset({Channel.EMAIL, Channel.IN_APP})),
    Kind.REVIEW_REPLY: KindRules(Category.MARKETING, _NOT_SMS),
}

ERASED_ADDRESS = "[erased]"
"""What an erased person's phone number reads as where a delivery kept it (ADR 0024);
their email address reads as ``domain.users.erased_email``."""


ERASED_CONTEXT: Mapping[str, Any] = {"erased": True}
"""What an erased person's notification keeps in place of the context it was rendered
from (their name, their order's address, their links): nothing of it may be sent."""


def undeliverable(address: str) -> bool:
    """An address no provider is ever given: an erased person's (the ``.invalid``
    top-level domain, reserved for addresses that must not resolve: RFC 2606 and
    6761; ``domain.users.erased_email`` is one), or the blank an erased phone
    number reads as."""
    if address == ERASED_ADDRESS:
        return True
    domain = address.rpartition("@")[2].strip().rstrip(".").lower()
    return domain == "invalid" or domain.endswith(".invalid")


LOCALES = ("en", "de")
DEFAULT_LOCALE = "en"
DEFAULT_TIME_ZONE = "UTC"


class InvalidPreferences(DomainError, ValueError):
    """A time zone, locale or quiet-hours value that cannot be used (422: a
    ``DomainError`` that is a ``ValueError`` is invalid input)."""

    code = "invalid-preferences"


@dataclass(frozen=True)
class QuietHours:
    """A daily window, in the user's own time zone, in which SMS and push that are
    not urgent wait; it may cross midnight (22:00-07:00)."""

    start: time
    end: time

    def contains(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True)
class Preferences:
    """One user's choices: per category and channel (``order_updates_sms``), their
    locale, time zone and quiet hours. Stored in the profile's
    ``notification_preferences``; keys it lacks take the defaults."""

    enabled: frozenset[tuple[Category, Channel]]
    locale: str = DEFAULT_LOCALE
    time_zone: str = DEFAULT_TIME_ZONE
    quiet_hours: QuietHours | None = None

    @classmethod
    def from_profile(cls, stored: Mapping[str, Any] | None) -> Preferences:
        stored = stored or {}
        enabled = {
            (category, channel)
            for category in (Category.ORDER_UPDATES, Category.MARKETING)
            for channel in Channel
            if stored.get(f"{category}_{channel}", _DEFAULTS[(category, channel)])
        }
        locale = stored.get("locale") or DEFAULT_LOCALE
        zone = stored.get("time_zone") or DEFAULT_TIME_ZONE
        quiet = None
        if stored.get("quiet_hours_start") and stored.get("quiet_hours_end"):
            quiet = QuietHours(
                time.fromisoformat(stored["quiet_hours_start"]),
                time.fromisoformat(stored["quiet_hours_end"]),
            )
        return cls(
            frozenset(enabled),
            locale if locale in LOCALES else DEFAULT_LOCALE,
            zone if _known_zone(zone) else DEFAULT_TIME_ZONE,
            quiet,
        )

    def allows(self, kind: Kind, channel: Channel) -> bool:
        rules = RULES[kind]
        if channel not in rules.channels:
            return False
        if rules.category is Category.ACCOUNT:
            return True  # security and account notices go out whatever the preferences
        return (rules.category, channel) in self.enabled

    def send_at(self, kind: Kind, channel: Channel, now: datetime) -> datetime:
        """When to send: ``now``, or, for SMS and push that are not urgent and fall
        in the quiet hours, the end of them (deferred, never dropped)."""
        quiet = self.quiet_hours
        if quiet is None or RULES[kind].urgent or channel not in (Channel.SMS, Channel.PUSH):
            return now
        zone = ZoneInfo(self.time_zone)
        local = now.astimezone(zone)
        if not quiet.contains(local.time().replace(tzinfo=None)):
            return now
        return _next_reading(now, quiet.end, zone)


def _next_reading(now: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The first instant after ``now`` at which the clock in ``zone`` reads ``at``.
    Compared as instants, not as wall times (Python compares two datetimes of one
    zone by their wall times, fold ignored: on the night clocks go back, the end
    of a window would come out before ``now``). A reading the clocks go back over
    comes at its next occurrence; one they skip is taken at the offset before the
    change (PEP 495 ``fold=0``), so the window lasts as long as on any other day."""
    local = now.astimezone(zone)
    instants: list[datetime] = []
    for days in (0, 1):
        wall = datetime.combine(local.date() + timedelta(days=days), at)
        readings = [wall.replace(tzinfo=zone, fold=fold) for fold in (0, 1)]
        # A reading that exists comes back the same from UTC; a skipped one does not.
        real = [
            r for r in readings if r.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall
        ]
        instants += [r.astimezone(UTC) for r in real or readings[:1]]
    return min(i for i in instants if i > now).astimezone(now.tzinfo)


_DEFAULTS: Mapping[tuple[Category, Channel], bool] = {
    (category, channel): (category is Category.ORDER_UPDATES and channel is not Channel.SMS)
    for category in (Category.ORDER_UPDATES, Category.MARKETING)
    for channel in Channel
} | {(Category.MARKETING, Channel.IN_APP): True}


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def valid_time_zone(name: str) -> str:
    """An IANA zone name (``Europe/Berlin``) this machine knows; not the file
    aliases zoneinfo also loads (``localtime``, ``Factory``), which mean nothing
    to the user and may differ between machines."""
    if not (
        isinstance(name, str)
        and _ZONE_NAME.fullmatch(name)
        and name not in _NOT_ZONES
        and (name in _zone_names() or not _zone_names())
        and _known_zone(name)
    ):
        raise InvalidPreferences("not a known time zone: give an IANA name, e.g. Europe/Berlin")
    return name


_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}")
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


@cache
def _zone_names() -> frozenset[str]:
    """The IANA names of the installed tz database (empty where none is listed:
    then loading the zone is the test)."""
    return frozenset(available_timezones())


# --- preferences as the profile stores them ------------------------------------------

PREFERENCE_CATEGORIES = (Category.ORDER_UPDATES, Category.MARKETING)
"""The categories a user may turn off per channel (account messages always go)."""
CHANNEL_PREFERENCES = tuple(
    f"{category}_{channel}" for category in PREFERENCE_CATEGORIES for channel in Channel
)
"""The boolean keys, ``{category}_{channel}``: ``order_updates_sms``, ``marketing_email``."""
QUIET_HOURS_KEYS = ("quiet_hours_start", "quiet_hours_end")
PREFERENCE_KEYS = frozenset({*CHANNEL_PREFERENCES, "locale", "time_zone", *QUIET_HOURS_KEYS})
_HOUR_MINUTE = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


def default_preferences() -> dict[str, Any]:
    """Every key with what its absence means (``Preferences.from_profile``): the
    stored dict holds only what the user set (events written before a key existed
    lack it), the read model answers them all."""
    return {
        **{f"{category}_{channel}": enabled for (category, channel), enabled in _DEFAULTS.items()},
        "locale": DEFAULT_LOCALE,
        "time_zone": DEFAULT_TIME_ZONE,
        "quiet_hours_start": None,
        "quiet_hours_end": None,
    }


def valid_preferences(preferences: Mapping[str, Any]) -> dict[str, Any]:
    """The given preferences (a partial update: any subset of ``PREFERENCE_KEYS``),
    checked. Quiet hours come in pairs, both ``"HH:MM"`` or both null (no quiet
    hours), so that a half-set window never reaches ``send_at``. Raises
    ``InvalidPreferences``."""
    if not isinstance(preferences, Mapping):
        raise InvalidPreferences("notification preferences are an object")
    unknown = set(preferences) - PREFERENCE_KEYS
    if unknown:
        names = ", ".join(sorted(str(key)[:40] for key in unknown)[:5])
        raise InvalidPreferences(f"not notification preferences: {names}")
    valid: dict[str, Any] = {}
    for key, value in preferences.items():
        if key in CHANNEL_PREFERENCES:
            if not isinstance(value, bool):
                raise InvalidPreferences(f"{key} is true or false")
            valid[key] = value
        elif key == "locale":
            if value not in LOCALES:
                raise InvalidPreferences(f"locale is one of {', '.join(LOCALES)}")
            valid[key] = value
        elif key == "time_zone":
            valid[key] = valid_time_zone(value)
    present = [key for key in QUIET_HOURS_KEYS if key in preferences]
    if present:
        if len(present) == 1:
            raise InvalidPreferences("give quiet_hours_start and quiet_hours_end together")
        start, end = (preferences[key] for key in QUIET_HOURS_KEYS)
        if (start is None) != (end is None):
            raise InvalidPreferences("quiet hours have a start and an end, or neither")
        if start is not None:
            for key, value in zip(QUIET_HOURS_KEYS, (start, end), strict=True):
                if not (isinstance(value, str) and _HOUR_MINUTE.fullmatch(value)):
                    raise InvalidPreferences(f"{key} is a time of day, HH:MM (00:00 to 23:59)")
            if start == end:
                raise InvalidPreferences("quiet hours that start when they end are empty")
        valid.update(quiet_hours_start=start, quiet_hours_end=end)
    return valid


def merged_preferences(
    stored: Mapping[str, Any] | None, changes: Mapping[str, Any]
) -> dict[str, Any]:
    """A partial update applied to the stored preferences (None: none stored, the
    defaults): keys not given keep their value."""
    return {**(stored or {}), **valid_preferences(changes)}
