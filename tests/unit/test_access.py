"""Principal: who is acting, and what they may see."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.access import Principal
from domain.errors import NotPermitted
from domain.users import Role

role_sets = st.frozensets(st.sampled_from([r.value for r in Role]))


@given(roles=role_sets, role=st.sampled_from(Role))
@settings(max_examples=50)
def test_require_role_agrees_with_has_role(roles: frozenset[str], role: Role) -> None:
    principal = Principal(uuid4(), uuid4(), roles)
    assert principal.has_role(role) == (role.value in roles)
    if principal.has_role(role):
        principal.require_role(role)
    else:
        with pytest.raises(NotPermitted, match=role.value):
            principal.require_role(role)


@given(roles=role_sets, me=st.uuids(), other=st.uuids())
@settings(max_examples=50)
def test_a_user_sees_themself_and_only_an_admin_sees_others(
    roles: frozenset[str], me: UUID, other: UUID
) -> None:
    principal = Principal(me, uuid4(), roles)
    assert principal.may_see_user(me)
    assert principal.may_see_user(other) == (other == me or Role.ADMIN.value in roles)
