"""Who is acting: the authenticated principal and the checks on it."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain.errors import NotPermitted
from domain.users import Role


@dataclass(frozen=True)
class Principal:
    user_id: UUID
    session_id: UUID
    roles: frozenset[str]

    def has_role(self, role: Role) -> bool:
        return role.value in self.roles

    def require_role(self, role: Role) -> None:
        if not self.has_role(role):
            raise NotPermitted(f"this needs the {role.value} role")

    def may_see_user(self, user_id: UUID) -> bool:
        return user_id == self.user_id or self.has_role(Role.ADMIN)
