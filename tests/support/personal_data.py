"""A person whose data must never be stored in clear, written through the commands,
and the probe that looks for it in stored bytes (encryption at rest, sealing)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID, uuid4

from pydantic import SecretStr

from infra.settings import Settings
from infra.wiring.process import Container
from tests.conftest import TEST_SECRET
from tests.support.users_client import STRONG_PASSWORD


def store_settings(database_url: str, data_dir: Path, key: str | None = None) -> Settings:
    """A store on ``database_url``, encrypted at rest with ``key`` if given."""
    return Settings(
        database_url=database_url,
        data_dir=data_dir,
        secret_key=SecretStr(TEST_SECRET),
        encryption_key=None if key is None else SecretStr(key),
    )


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    phone: str
    address: dict[str, str] = field(hash=False)

    @property
    def texts(self) -> list[str]:
        return [self.email, self.name, self.phone, *self.address.values()]

    def register(self, container: Container) -> UUID:
        """Registered, then given a phone and an address: every personal field."""
        user_id = uuid4()
        commands = container.user_commands
        commands.register(user_id, self.email, STRONG_PASSWORD, self.name)
        commands.update_profile(user_id, {"phone": self.phone, "addresses": [self.address]})
        return user_id

    def found_in(self, states: list[bytes]) -> set[str]:
        """Which of the person's texts appear in any of ``states``."""
        return {text for text in self.texts for state in states if text.encode() in state}
