"""Users and access through the scaled mode (the journeys of tests/e2e/test_users_flow.py):
the verification and reset mails come from the mail policy in a worker."""

import pytest

from tests.e2e import test_users_flow as flow

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("scaled-deployment")]

test_the_whole_journey = flow.test_the_whole_journey
test_registration_is_idempotent = flow.test_registration_is_idempotent
test_change_password_signs_out_other_sessions = flow.test_change_password_signs_out_other_sessions
test_admin_lists_by_role_with_keyset_pagination = (
    flow.test_admin_lists_by_role_with_keyset_pagination
)
