"""Schemathesis against the live schema: every operation of the REST API, served by a live
server and fed generated input as a manager and as a reviewer, answers without a server error,
and every answer matches what the schema promises."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from config.models import ApiToken
from tests.reviews.conftest import campaign  # noqa: F401 - the world the operations act on

EXAMPLES_PER_OPERATION = 15
# Schema-valid is not always acceptable: an id of a definition that does not exist, a reason the
# campaign's rules require. Those answers are 4xx with the reason, which the other checks check.
NOT_CHECKED = [positive_data_acceptance]


@pytest.mark.parametrize("role", ["manager", "reviewer"])
def test_every_operation_keeps_to_the_schema(
    request,
    transactional_db,
    live_server,
    campaign,  # noqa: F811
    role,
):
    _token, key = ApiToken.issue(request.getfixturevalue(role), "schemathesis")
    headers = {"Authorization": f"Token {key}"}
    schema = schemathesis.openapi.from_url(
        f"{live_server.url}/api/schema/?format=json", headers=headers
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def keeps_to_the_schema(case):
            case.call_and_validate(headers=headers, excluded_checks=NOT_CHECKED)

        try:
            keeps_to_the_schema()
        except Exception as exc:
            raise AssertionError(f"{operation.label}: {exc}") from exc
