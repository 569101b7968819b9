"""Notification preferences: what a user may set (``valid_preferences``, mirrored by
the PATCH schema), how a partial update merges into the stored ones on the User
aggregate, and what the policy makes of them (``Preferences``): account messages
always go; quiet hours defer SMS and push that are not urgent to the window's end,
in the user's zone, across midnight and daylight-saving changes, and never drop them."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any, get_args
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from commands.users.http.schemas import NotificationPreferences, ProfileChanges
from domain.errors import DomainError
from domain.notifications import (
    CHANNEL_PREFERENCES,
    LOCALES,
    PREFERENCE_KEYS,
    RULES,
    Category,
    Channel,
    InvalidPreferences,
    Kind,
    Preferences,
    default_preferences,
    valid_preferences,
)
from domain.users import DEFAULT_NOTIFICATION_PREFERENCES, User
from read_api.users_models import ProfileNotifications

BERLIN = ZoneInfo("Europe/Berlin")
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]
ACCOUNT_KINDS = [kind for kind, rules in RULES.items() if rules.category is Category.ACCOUNT]
NOT_URGENT = [kind for kind, rules in RULES.items() if not rules.urgent]
DEFERRABLE = [k for k in NOT_URGENT if {Channel.SMS, Channel.PUSH} & RULES[k].channels]

hour_minutes = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59))
stored_preferences = st.fixed_dictionaries(
    {},
    optional={
        **{key: st.booleans() for key in CHANNEL_PREFERENCES},
        "locale": st.sampled_from(LOCALES),
        "time_zone": st.sampled_from(ZONES),
        "quiet_hours_start": hour_minutes,
        "quiet_hours_end": hour_minutes,
    },
)
instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)


def berlin(year: int, month: int, day: int, hour: int, minute: int, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN, fold=fold)


def quiet(start: str, end: str, zone: str = "Europe/Berlin") -> Preferences:
    return Preferences.from_profile(
        {
            "order_updates_sms": True,
            "time_zone": zone,
            "quiet_hours_start": start,
            "quiet_hours_end": end,
        }
    )


# --- account messages ------------------------------------------------------------


@given(stored=stored_preferences | st.none(), kind=st.sampled_from(ACCOUNT_KINDS))
def test_account_messages_always_go_on_their_channels(
    stored: dict[str, Any] | None, kind: Kind
) -> None:
    preferences = Preferences.from_profile(stored)
    for channel in Channel:
        assert preferences.allows(kind, channel) is (channel in RULES[kind].channels)


@given(
    stored=stored_preferences, kind=st.sampled_from(list(Kind)), channel=st.sampled_from(Channel)
)
def test_other_messages_go_only_where_the_user_allows(
    stored: dict[str, Any], kind: Kind, channel: Channel
) -> None:
    rules = RULES[kind]
    if rules.category is Category.ACCOUNT or channel not in rules.channels:
        return
    expected = stored.get(
        f"{rules.category}_{channel}", default_preferences()[f"{rules.category}_{channel}"]
    )
    assert Preferences.from_profile(stored).allows(kind, channel) is expected


# --- quiet hours -------------------------------------------------------------------


def test_quiet_hours_across_midnight_defer_to_their_end_in_the_users_zone() -> None:
    preferences = quiet("22:00", "07:00")
    evening = berlin(2026, 1, 15, 22, 30).astimezone(UTC)  # 21:30 UTC
    small_hours = berlin(2026, 1, 16, 2, 0).astimezone(UTC)
    morning = berlin(2026, 1, 16, 7, 0).astimezone(UTC)  # 06:00 UTC
    for now in (evening, small_hours):
        for channel in (Channel.SMS, Channel.PUSH):
            assert preferences.send_at(Kind.ORDER_SHIPPED, channel, now) == morning
        # deferred, not dropped: still allowed, and other channels go now
        assert preferences.allows(Kind.ORDER_SHIPPED, Channel.SMS)
        assert preferences.send_at(Kind.ORDER_SHIPPED, Channel.EMAIL, now) == now
        assert preferences.send_at(Kind.ORDER_SHIPPED, Channel.IN_APP, now) == now
    # 21:30 in Berlin is 20:30 UTC, outside; 22:30 UTC would be inside in UTC terms.
    outside = berlin(2026, 1, 15, 21, 30).astimezone(UTC)
    assert preferences.send_at(Kind.ORDER_SHIPPED, Channel.SMS, outside) == outside
    assert preferences.send_at(Kind.ORDER_SHIPPED, Channel.SMS, morning) == morning


def test_urgent_messages_are_never_deferred() -> None:
    preferences = quiet("22:00", "07:00")
    now = berlin(2026, 1, 15, 23, 0).astimezone(UTC)
    assert RULES[Kind.PAYMENT_AUTHENTICATION].urgent
    for channel in (Channel.SMS, Channel.PUSH):
        assert preferences.send_at(Kind.PAYMENT_AUTHENTICATION, channel, now) == now


@given(
    start=hour_minutes,
    end=hour_minutes,
    zone=st.sampled_from(ZONES),
    now=instants,
    kind=st.sampled_from(list(Kind)),
    channel=st.sampled_from(Channel),
)
def test_quiet_hours_defer_to_the_first_moment_after_them_and_never_drop(
    start: str, end: str, zone: str, now: datetime, kind: Kind, channel: Channel
) -> None:
    preferences = quiet(start, end, zone)
    assert preferences.quiet_hours is not None
    at = preferences.send_at(kind, channel, now)
    local = now.astimezone(ZoneInfo(zone)).time()
    inside = preferences.quiet_hours.contains(local)
    if RULES[kind].urgent or channel not in (Channel.SMS, Channel.PUSH) or not inside:
        assert at == now
        return
    assert now < at <= now + timedelta(hours=25)  # later, never sooner, within a day
    assert not preferences.quiet_hours.contains(at.astimezone(ZoneInfo(zone)).time())


def test_the_night_clocks_go_back_the_window_ends_at_its_next_reading() -> None:
    # 25 October 2026: 03:00 CEST becomes 02:00 CET, so 02:00-03:00 happens twice.
    preferences = quiet("22:00", "02:30")
    first_pass = berlin(2026, 10, 25, 2, 10).astimezone(UTC)  # 00:10 UTC
    second_pass = berlin(2026, 10, 25, 2, 10, fold=1).astimezone(UTC)  # 01:10 UTC
    assert second_pass - first_pass == timedelta(hours=1)
    at = preferences.send_at(Kind.ORDER_SHIPPED, Channel.SMS, first_pass)
    assert (
        at
        == berlin(2026, 10, 25, 2, 30).astimezone(UTC)
        == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    )
    # The wall clock reads 02:10 again: quiet again, until the second 02:30 (not
    # the first, an hour ago, which would send at once, in the quiet hours).
    at = preferences.send_at(Kind.ORDER_SHIPPED, Channel.SMS, second_pass)
    assert at == datetime(2026, 10, 25, 1, 30, tzinfo=UTC) > second_pass
    evening = berlin(2026, 10, 24, 23, 0).astimezone(UTC)
    assert preferences.send_at(Kind.ORDER_DELIVERED, Channel.PUSH, evening) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )


def test_the_night_clocks_go_forward_a_skipped_end_keeps_the_windows_length() -> None:
    # 29 March 2026: 02:00 CET becomes 03:00 CEST; 02:30 never appears on the clock.
    preferences = quiet("01:00", "02:30")
    now = berlin(2026, 3, 29, 1, 15).astimezone(UTC)  # 00:15 UTC
    at = preferences.send_at(Kind.ORDER_SHIPPED, Channel.SMS, now)
    # 02:30 at the offset before the change (CET): 01:30 UTC, 03:30 CEST; 1h30 after
    # the window's start, as on any other night. Never before the window has ended.
    assert at == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert at.astimezone(BERLIN).time() == time(3, 30)


# --- what may be set ---------------------------------------------------------------


def test_every_key_may_be_set() -> None:
    every = {
        **dict.fromkeys(CHANNEL_PREFERENCES, True),
        "locale": "de",
        "time_zone": "America/New_York",
        "quiet_hours_start": "21:15",
        "quiet_hours_end": "06:45",
    }
    assert set(every) == PREFERENCE_KEYS == set(default_preferences())
    assert valid_preferences(every) == every
    assert NotificationPreferences.model_validate(every).model_dump() == every
    assert valid_preferences({"quiet_hours_start": None, "quiet_hours_end": None}) == {
        "quiet_hours_start": None,
        "quiet_hours_end": None,
    }


BAD = [
    ("unknown key", {"sms_spam": True}),
    ("account cannot be turned off", {"account_email": False}),
    ("not a bool", {"marketing_email": "perhaps"}),
    ("a number for a bool", {"order_updates_push": 1}),
    ("unknown locale", {"locale": "fr"}),
    ("unknown time zone", {"time_zone": "Mars/Olympus_Mons"}),
    ("a file, not a zone", {"time_zone": "localtime"}),
    ("a path", {"time_zone": "../etc/passwd"}),
    ("an offset", {"time_zone": "+02:00"}),
    ("start without end", {"quiet_hours_start": "22:00"}),
    ("end without start", {"quiet_hours_end": "07:00"}),
    ("start null, end set", {"quiet_hours_start": None, "quiet_hours_end": "07:00"}),
    ("hour 24", {"quiet_hours_start": "24:00", "quiet_hours_end": "07:00"}),
    ("seconds", {"quiet_hours_start": "22:00:00", "quiet_hours_end": "07:00"}),
    ("one digit", {"quiet_hours_start": "7:00", "quiet_hours_end": "08:00"}),
    ("empty window", {"quiet_hours_start": "07:00", "quiet_hours_end": "07:00"}),
]


@pytest.mark.parametrize("preferences", [pytest.param(p, id=n) for n, p in BAD])
def test_bad_preferences_are_refused_by_the_domain_and_the_schema(
    preferences: dict[str, Any],
) -> None:
    with pytest.raises(InvalidPreferences):
        valid_preferences(preferences)
    with pytest.raises(ValidationError):
        ProfileChanges.model_validate({"notification_preferences": preferences})


def test_invalid_preferences_are_invalid_input() -> None:
    """A DomainError that is a ValueError: the HTTP edge answers 422."""
    assert issubclass(InvalidPreferences, DomainError)
    assert issubclass(InvalidPreferences, ValueError)
    assert InvalidPreferences.code == "invalid-preferences"


def test_the_schemas_locales_are_the_domains() -> None:
    assert get_args(NotificationPreferences.model_fields["locale"].annotation) == LOCALES


# --- the profile -------------------------------------------------------------------


def new_user() -> User:
    return User.register(uuid4(), "pref@example.com", "hash", "Pat")


def test_a_partial_update_merges_with_the_stored_preferences() -> None:
    user = new_user()
    user.update_profile({"notification_preferences": {"marketing_sms": True}})
    assert user.notification_preferences == {
        **DEFAULT_NOTIFICATION_PREFERENCES,
        "marketing_sms": True,
    }
    user.update_profile(
        {
            "notification_preferences": {
                "time_zone": "Europe/Berlin",
                "quiet_hours_start": "22:00",
                "quiet_hours_end": "07:00",
            }
        }
    )
    assert user.notification_preferences is not None
    assert user.notification_preferences["marketing_sms"] is True
    assert user.notification_preferences["time_zone"] == "Europe/Berlin"
    # the event carries the whole result: replaying it needs no earlier state
    last = user.collect_events()[-1]
    assert isinstance(last, User.ProfileUpdated)
    assert last.changes["notification_preferences"] == user.notification_preferences
    # clearing the quiet hours
    user.update_profile(
        {"notification_preferences": {"quiet_hours_start": None, "quiet_hours_end": None}}
    )
    assert Preferences.from_profile(user.notification_preferences).quiet_hours is None


def test_a_refused_update_changes_nothing() -> None:
    user = new_user()
    user.collect_events()
    for _, preferences in BAD:
        with pytest.raises(InvalidPreferences):
            user.update_profile({"notification_preferences": preferences})
    assert user.notification_preferences == DEFAULT_NOTIFICATION_PREFERENCES
    assert user.collect_events() == []


def test_an_update_that_changes_nothing_records_nothing() -> None:
    user = new_user()
    user.collect_events()
    user.update_profile({"notification_preferences": {"order_updates_email": True}})
    assert user.collect_events() == []


def test_preferences_stored_before_the_new_keys_still_load_and_answer_every_key() -> None:
    old = {"order_updates_email": False, "order_updates_sms": True, "marketing_email": True}
    preferences = Preferences.from_profile(old)
    assert (Category.ORDER_UPDATES, Channel.SMS) in preferences.enabled
    assert (Category.ORDER_UPDATES, Channel.EMAIL) not in preferences.enabled
    assert (Category.ORDER_UPDATES, Channel.PUSH) in preferences.enabled  # its default
    assert (preferences.locale, preferences.time_zone, preferences.quiet_hours) == (
        "en",
        "UTC",
        None,
    )
    answered = ProfileNotifications.model_validate(old).model_dump(exclude_unset=True)
    assert answered == {**default_preferences(), **old}
    assert set(answered) == PREFERENCE_KEYS
