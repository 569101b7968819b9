"""The catalog's HTTP validators: If-None-Match under RFC 9110's weak comparison
(section 8.8.3.2), its ``*`` and its lists, and the headers a 304 carries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from read_api.catalog_models import ProductDetail, ProductPage
from read_api.http_caching import (
    CATALOG_CACHE_CONTROL,
    answer,
    body_etag,
    etag,
    none_match,
    not_modified,
)

TAG = 'W/"p1a2b3c4d.1.42"'


@pytest.mark.parametrize(
    "fields",
    [
        ['W/"p1a2b3c4d.1.42"'],
        ['"p1a2b3c4d.1.42"'],  # weak comparison: a strong tag with the same opaque part
        ["*"],
        [" * "],
        ['"other", W/"p1a2b3c4d.1.42"'],
        ['W/"p1a2b3c4d.1.42","other"'],
        ['"a,b", W/"p1a2b3c4d.1.42"'],  # a comma inside a tag is part of it
        ['"other"', 'W/"p1a2b3c4d.1.42"'],  # several header lines are one list
    ],
)
def test_a_matching_if_none_match(fields: list[str]) -> None:
    assert none_match(fields, TAG)


@pytest.mark.parametrize(
    "fields",
    [
        [],
        [""],
        ['W/"p1a2b3c4d.1.43"'],
        ['"p1a2b3c4d.1.4"', '"p1a2b3c4d.1.420"'],
        ["p1a2b3c4d.1.42"],  # not quoted: malformed, matches nothing
        ['w/"p1a2b3c4d.1.42"'],  # the weak prefix is case-sensitive
        ['"a", *'],  # * only on its own
        ['"a,b"'],
        ['"a" junk W/"p1a2b3c4d.1.42"'],  # a list that turns malformed stops there
    ],
)
def test_an_if_none_match_that_does_not_match(fields: list[str]) -> None:
    assert not none_match(fields, TAG)


_OPAQUE = st.text(
    st.characters(min_codepoint=0x23, max_codepoint=0x7E) | st.sampled_from("!"), max_size=20
)


@given(st.lists(_OPAQUE, max_size=5), _OPAQUE, st.booleans())
def test_a_list_matches_exactly_when_it_holds_the_tag(
    others: list[str], opaque: str, weak: bool
) -> None:
    tag = f'W/"{opaque}"'
    listed = [f'{"W/" if weak else ""}"{o}"' for o in others]
    assert none_match([", ".join(listed)], tag) == (opaque in others)
    assert none_match([", ".join([*listed, f'"{opaque}"'])], tag)


def test_tags_name_kind_state_and_representation() -> None:
    detail = etag("p", 1, 42, models=(ProductDetail,))
    assert detail.startswith('W/"p') and detail.endswith('.1.42"')
    assert etag("p", 1, 43, models=(ProductDetail,)) != detail
    assert etag("p", 2, 42, models=(ProductDetail,)) != detail  # another generation
    # Another representation (models) gives another tag for the same state.
    assert etag("p", 1, 42, models=(ProductPage,)) != detail
    assert body_etag("s", b"{}") == body_etag("s", b"{}") != body_etag("s", b"[]")


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/products", "headers": raw})


def test_a_304_has_no_body_and_the_headers_of_the_200() -> None:
    full = answer(_request({}), b'{"items":[]}', TAG)
    assert full.status_code == 200 and full.body == b'{"items":[]}'
    unchanged = answer(_request({"If-None-Match": TAG}), b'{"items":[]}', TAG)
    assert unchanged.status_code == 304 and unchanged.body == b""
    for response in (full, unchanged):
        assert response.headers["etag"] == TAG
        assert response.headers["cache-control"] == CATALOG_CACHE_CONTROL
        assert response.headers["vary"] == "Authorization, X-Consistency-Token"
    assert "content-length" not in unchanged.headers


@pytest.mark.parametrize("credential", ["Authorization", "X-Cart-Token"])
def test_a_personal_request_gets_no_validator_and_no_304(credential: str) -> None:
    request = _request({credential: "Bearer x", "If-None-Match": TAG})
    assert not_modified(request, TAG) is None
    response = answer(request, b"{}", TAG)
    assert response.status_code == 200
    assert "etag" not in response.headers and "cache-control" not in response.headers
