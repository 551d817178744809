"""The IAM calls of a collection, checked against AWS's own service model with botocore's Stubber.

The Stubber refuses a request whose parameters or a response whose shape the IAM model does not
allow, so these tests pin the calls Attest makes. It answers before botocore's retries, so
throttling is tested through the emulator (tests/aws_emulator.py) instead.
"""

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from inventory.aws import AwsError, AwsSession, CallLog, IamReader, NoSuchEntity, Pacer
from tests.aws_emulator import FAKE_CREDENTIALS, emulate, without_retry_delays

ACCOUNT_ID = "123456789012"
ALICE = f"arn:aws:iam::{ACCOUNT_ID}:user/alice"
CREATED = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
USED = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
# Access Advisor job ids are UUIDs; the model refuses anything shorter.
JOB = "8a1b2c3d-0000-4000-8000-000000000001"
OTHER_JOB = "8a1b2c3d-0000-4000-8000-000000000002"


@pytest.fixture
def no_retry_delay(monkeypatch):
    without_retry_delays(monkeypatch)


@pytest.fixture
def iam():
    client = boto3.client("iam", region_name="us-east-1", **FAKE_CREDENTIALS)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def user(name):
    return {
        "UserName": name,
        "UserId": f"AIDA{name.upper():0<17}",
        "Arn": f"arn:aws:iam::{ACCOUNT_ID}:user/{name}",
        "Path": "/",
        "CreateDate": CREATED,
    }


def job_answer(status, services=(), **extra):
    return {
        "JobStatus": status,
        "JobCreationDate": CREATED,
        "JobCompletionDate": USED,
        "ServicesLastAccessed": list(services),
        **extra,
    }


def s3_usage(namespace="s3"):
    return {
        "ServiceName": f"Service {namespace}",
        "ServiceNamespace": namespace,
        "LastAuthenticated": USED,
        "LastAuthenticatedEntity": ALICE,
        "LastAuthenticatedRegion": "eu-west-1",
        "TotalAuthenticatedEntities": 1,
        "TrackedActionsLastAccessed": [
            {"ActionName": "GetObject", "LastAccessedTime": USED, "LastAccessedRegion": "eu-west-1"}
        ],
    }


def test_authorization_details_are_read_page_by_page_following_the_marker(iam):
    client, stubber = iam
    stubber.add_response(
        "get_account_authorization_details",
        {"UserDetailList": [user("alice"), user("bob")], "IsTruncated": True, "Marker": "page-2"},
        expected_params={"MaxItems": 2},
    )
    stubber.add_response(
        "get_account_authorization_details",
        {"UserDetailList": [user("carol")], "IsTruncated": True, "Marker": "page-3"},
        expected_params={"MaxItems": 2, "Marker": "page-2"},
    )
    stubber.add_response(
        "get_account_authorization_details",
        {"UserDetailList": [], "RoleDetailList": [], "IsTruncated": False},
        expected_params={"MaxItems": 2, "Marker": "page-3"},
    )

    pages = list(IamReader(client).authorization_details(page_size=2))

    assert [[u["UserName"] for u in page.get("UserDetailList", [])] for page in pages] == [
        ["alice", "bob"],
        ["carol"],
        [],
    ]


def test_a_single_untruncated_page_is_read_once(iam):
    client, stubber = iam
    stubber.add_response(
        "get_account_authorization_details",
        {"UserDetailList": [user("alice")], "IsTruncated": False},
        expected_params={"MaxItems": 1000},
    )

    pages = list(IamReader(client).authorization_details())

    assert len(pages) == 1


def test_the_credential_report_is_polled_until_complete_then_read(iam):
    client, stubber = iam
    stubber.add_response("generate_credential_report", {"State": "STARTED"}, expected_params={})
    stubber.add_response("generate_credential_report", {"State": "INPROGRESS"}, expected_params={})
    stubber.add_response("generate_credential_report", {"State": "COMPLETE"}, expected_params={})
    report = "user,arn\nalice,arn:aws:iam::123456789012:user/alice\n"
    stubber.add_response(
        "get_credential_report",
        {"Content": report.encode(), "ReportFormat": "text/csv", "GeneratedTime": USED},
        expected_params={},
    )

    assert IamReader(client).credential_report(timeout=60, poll=0) == report


def test_a_credential_report_never_ready_times_out(iam):
    client, stubber = iam
    stubber.add_response("generate_credential_report", {"State": "STARTED"}, expected_params={})

    with pytest.raises(AwsError) as failure:
        IamReader(client).credential_report(timeout=0, poll=0)

    assert (failure.value.operation, failure.value.code) == ("GenerateCredentialReport", "Timeout")


def test_an_access_advisor_job_is_started_at_action_level_for_the_principal(iam):
    client, stubber = iam
    stubber.add_response(
        "generate_service_last_accessed_details",
        {"JobId": JOB},
        expected_params={"Arn": ALICE, "Granularity": "ACTION_LEVEL"},
    )

    assert IamReader(client).start_service_last_accessed(ALICE) == JOB


def test_a_running_access_advisor_job_reports_its_status(iam):
    client, stubber = iam
    stubber.add_response(
        "get_service_last_accessed_details",
        job_answer("IN_PROGRESS"),
        expected_params={"JobId": JOB},
    )

    status, _ = IamReader(client).service_last_accessed(JOB)

    assert status == "IN_PROGRESS"


def test_a_completed_access_advisor_job_is_read_to_its_last_page_and_merged(iam):
    client, stubber = iam
    stubber.add_response(
        "get_service_last_accessed_details",
        job_answer("COMPLETED", [s3_usage("s3"), s3_usage("ec2")], IsTruncated=True, Marker="m2"),
        expected_params={"JobId": JOB},
    )
    stubber.add_response(
        "get_service_last_accessed_details",
        job_answer("COMPLETED", [s3_usage("sqs")], IsTruncated=True, Marker="m3"),
        expected_params={"JobId": JOB, "Marker": "m2"},
    )
    stubber.add_response(
        "get_service_last_accessed_details",
        job_answer("COMPLETED", [s3_usage("iam")], IsTruncated=False),
        expected_params={"JobId": JOB, "Marker": "m3"},
    )

    status, answer = IamReader(client).service_last_accessed(JOB)

    assert status == "COMPLETED"
    assert answer["JobStatus"] == "COMPLETED"
    assert [s["ServiceNamespace"] for s in answer["ServicesLastAccessed"]] == [
        "s3",
        "ec2",
        "sqs",
        "iam",
    ]
    assert answer["ServicesLastAccessed"][0]["TrackedActionsLastAccessed"][0]["ActionName"] == (
        "GetObject"
    )


def test_a_deleted_principal_becomes_no_such_entity_with_code_message_and_request_id(iam):
    client, stubber = iam
    stubber.add_client_error(
        "generate_service_last_accessed_details",
        service_error_code="NoSuchEntity",
        service_message="The user with name alice cannot be found.",
        http_status_code=404,
        response_meta={"RequestId": "4c1d-request"},
        expected_params={"Arn": ALICE, "Granularity": "ACTION_LEVEL"},
    )

    with pytest.raises(NoSuchEntity) as failure:
        IamReader(client).start_service_last_accessed(ALICE)

    assert failure.value.as_dict() == {
        "operation": "GenerateServiceLastAccessedDetails",
        "code": "NoSuchEntity",
        "message": "The user with name alice cannot be found.",
        "request_id": "4c1d-request",
    }
    assert not failure.value.is_throttling


@pytest.mark.parametrize(("code", "throttling"), [("AccessDenied", False), ("Throttling", True)])
def test_other_aws_errors_become_aws_errors_that_say_whether_aws_throttled(iam, code, throttling):
    client, stubber = iam
    stubber.add_client_error(
        "get_account_authorization_details",
        service_error_code=code,
        service_message="no",
        response_meta={"RequestId": "req-2"},
    )

    with pytest.raises(AwsError) as failure:
        list(IamReader(client).authorization_details())

    assert not isinstance(failure.value, NoSuchEntity)
    assert (failure.value.operation, failure.value.code, failure.value.request_id) == (
        "GetAccountAuthorizationDetails",
        code,
        "req-2",
    )
    assert failure.value.is_throttling is throttling


def test_the_call_log_counts_calls_per_operation(iam):
    client, stubber = iam
    calls = CallLog()
    calls.attach(client)
    for job in (JOB, OTHER_JOB):
        stubber.add_response("generate_service_last_accessed_details", {"JobId": job})
        stubber.add_response("get_service_last_accessed_details", job_answer("IN_PROGRESS"))
        stubber.add_response("get_service_last_accessed_details", job_answer("COMPLETED"))
    stubber.add_response("generate_credential_report", {"State": "COMPLETE"})
    stubber.add_response("get_credential_report", {"Content": b"user,arn\n"})

    reader = IamReader(client)
    for arn in (ALICE, f"arn:aws:iam::{ACCOUNT_ID}:role/deployer"):
        job = reader.start_service_last_accessed(arn)
        while reader.service_last_accessed(job)[0] != "COMPLETED":
            pass
    reader.credential_report(timeout=60, poll=0)

    assert calls.calls() == {
        "GenerateCredentialReport": 1,
        "GenerateServiceLastAccessedDetails": 2,
        "GetCredentialReport": 1,
        "GetServiceLastAccessedDetails": 4,
    }
    assert calls.retries == 0


def test_the_call_log_counts_the_attempts_botocore_retried(settings, no_retry_delay):
    settings.AWS_MAX_ATTEMPTS = 5
    with mock_aws(), emulate() as aws:
        boto3.client("iam", region_name="us-east-1").create_user(UserName="alice")
        aws.throttle("GetAccountAuthorizationDetails", times=3)
        session = AwsSession()

        pages = list(session.iam().authorization_details())

    assert [u["UserName"] for u in pages[0]["UserDetailList"]] == ["alice"]
    assert session.calls.calls() == {"GetAccountAuthorizationDetails": 1}
    assert session.calls.retries == 3


def test_an_unreachable_endpoint_becomes_an_aws_error(settings, monkeypatch):
    # Port 9 (discard) is closed on test machines: the connection is refused at once.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings.AWS_MAX_ATTEMPTS = 1

    with pytest.raises(AwsError) as failure:
        AwsSession().caller_identity()

    assert failure.value.operation == "GetCallerIdentity"
    assert failure.value.code == "EndpointConnectionError"
    assert "127.0.0.1:9" in failure.value.message


# Pacing ------------------------------------------------------------------------------------------

ANSWERED = (None, {"ResponseMetadata": {"RequestId": "r"}})
THROTTLED = (None, {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}})


class Clock:
    """A clock that moves only when told to or when slept on."""

    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def busy_pacer(answers_in_last_second: int) -> tuple[Pacer, Clock]:
    clock = Clock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    for _ in range(answers_in_last_second):
        pacer.before_send()
        pacer.on_answer(response=ANSWERED)
        clock.now += 0.9 / answers_in_last_second
    return pacer, clock


def test_a_busy_client_aws_throttles_then_sends_evenly_at_the_rate_aws_accepted():
    pacer, clock = busy_pacer(20)

    pacer.on_answer(response=THROTTLED)
    for _ in range(3):
        pacer.before_send()

    assert pacer.rate == pytest.approx(19)  # 20 accepted in the last second, less 5%
    assert clock.slept == pytest.approx([1 / 19, 1 / 19])


def test_throttles_answered_together_lower_the_pace_once():
    pacer, _ = busy_pacer(20)

    for _ in range(16):
        pacer.on_answer(response=THROTTLED)

    assert pacer.rate == pytest.approx(19)


def test_the_pace_climbs_back_while_aws_accepts_and_settles_just_under_its_limit():
    pacer, clock = busy_pacer(20)
    pacer.on_answer(response=THROTTLED)
    # Starting: the pace doubles each second until AWS throttles again...
    for _ in range(19):
        clock.now += 1 / 19
        pacer.on_answer(response=ANSWERED)
    assert pacer.rate == pytest.approx(38)
    clock.now += 0.05
    # ...which sets it under what AWS accepted in the last second; from then on a throttle
    # takes 5% off and a second without one adds a request a second.
    pacer.on_answer(response=THROTTLED)
    assert pacer.rate == pytest.approx(19 * 0.95)
    clock.now += 1
    pacer.on_answer(response=THROTTLED)
    assert pacer.rate == pytest.approx(19 * 0.95 * 0.95)
    for _ in range(17):
        pacer.on_answer(response=ANSWERED)
    assert pacer.rate == pytest.approx(19 * 0.95 * 0.95 + 1, abs=0.05)


def test_a_quiet_client_throttled_once_is_left_to_botocore_back_off():
    pacer, clock = busy_pacer(2)

    pacer.on_answer(response=THROTTLED)
    pacer.before_send()
    pacer.before_send()

    assert pacer.rate is None
    assert clock.slept == []
