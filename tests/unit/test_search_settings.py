"""``SHOP_SEARCH_CANDIDATES``, the bound on a PostgreSQL search's work (ADR 13): taken
from the environment, and refused at startup when it makes no sense."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from infra.settings import Settings
from projections.catalog.search_queries import SEARCH_CANDIDATES

SECRET = SecretStr("s" * 48)


def test_the_bound_defaults_and_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings(data_dir=tmp_path, secret_key=SECRET).search_candidates == SEARCH_CANDIDATES
    monkeypatch.setenv("SHOP_SEARCH_CANDIDATES", "500")
    assert Settings(data_dir=tmp_path, secret_key=SECRET).search_candidates == 500


@pytest.mark.parametrize("value", ["0", "-1", "99", "1000001", "many", "2.5"])
def test_a_bound_that_makes_no_sense_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SHOP_SEARCH_CANDIDATES", value)
    with pytest.raises(ValidationError, match="search_candidates"):
        Settings(data_dir=tmp_path, secret_key=SECRET)
