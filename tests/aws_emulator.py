"""AWS for the tests (and the benchmark): moto, extended where it falls short of what Attest reads.

moto 5.2 emulates IAM, STS and Organizations well enough to collect an account from, except that:

- it has no Access Advisor: GenerateServiceLastAccessedDetails and GetServiceLastAccessedDetails
  are missing;
- GetAccountAuthorizationDetails ignores MaxItems and Marker, answering everything in one page;
- AssumeRole hands out credentials for any role, whether it exists or not and whatever ExternalId
  its trust policy requires;
- ListAccounts answers an empty list outside an organization, where AWS refuses;
- nothing is ever throttled, and every answer comes at once.

`emulate()` adds all of this to moto's IAM, STS and Organizations response classes, in process
(under `mock_aws`) and in a moto server started by `moto_server()` in the same process, and
yields the `Emulator` through which a test seeds and steers it:

    with mock_aws(), emulate() as aws:
        aws.usage[arn] = [service_usage("s3", "Amazon S3", last=USED, actions=[...])]
        aws.throttle("GetAccountAuthorizationDetails", times=2)
        aws.limit(20)      # each account: 20 requests a second, beyond which AWS throttles
        aws.latency = 0.04  # every answer takes 40 ms, as over a network

Access Advisor answers are what the test seeded, never random: a job is IN_PROGRESS until its
`polls_to_complete`th poll, then COMPLETED with the principal's seeded services (none if nothing
was seeded), `access_advisor_page_size` per page unless the caller asks for MaxItems.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.sax.saxutils import escape

import boto3
from botocore.retries.standard import ExponentialBackoff
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, get_service_model
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.iam.exceptions import NotFoundException
from moto.iam.models import AWSManagedPolicy, iam_backends
from moto.iam.responses import IamResponse
from moto.moto_api._internal.models import moto_api_backend
from moto.organizations.exceptions import AWSOrganizationsNotInUseException
from moto.organizations.responses import OrganizationsResponse
from moto.server import ThreadedMotoServer
from moto.sts.models import sts_backends
from moto.sts.responses import TokenResponse

REGION = "us-east-1"
PARTITION = "aws"
# moto's answer to any access key it did not issue: the account the tests' own credentials are in.
OWN_ACCOUNT_ID = DEFAULT_ACCOUNT_ID
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

AUTHORIZATION_DETAILS_KEYS = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")


def service_usage(
    namespace: str,
    name: str,
    *,
    last: datetime | None = None,
    entity: str | None = None,
    region: str | None = None,
    total: int | None = None,
    actions: list[dict] | None = None,
) -> dict:
    """One ServicesLastAccessed entry; `actions=None` is a service whose actions AWS does not
    track, `last=None` one never used in the tracking period."""
    entry = {"ServiceName": name, "ServiceNamespace": namespace}
    if last is not None:
        entry["LastAuthenticated"] = last
        entry["LastAuthenticatedRegion"] = region or REGION
        if entity:
            entry["LastAuthenticatedEntity"] = entity
    entry["TotalAuthenticatedEntities"] = total if total is not None else int(last is not None)
    if actions is not None:
        entry["TrackedActionsLastAccessed"] = actions
    return entry


def action_usage(
    name: str, *, last: datetime | None = None, entity: str | None = None, region: str | None = None
) -> dict:
    """One TrackedActionsLastAccessed entry."""
    entry = {"ActionName": name}
    if last is not None:
        entry["LastAccessedTime"] = last
        entry["LastAccessedRegion"] = region or REGION
        if entity:
            entry["LastAccessedEntity"] = entity
    return entry


class Refusal(Exception):
    """An error answered before moto sees the request, written as AWS writes it."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def throttling() -> Refusal:
    return Refusal("Throttling", "Rate exceeded")


def access_denied(role_arn: str) -> Refusal:
    return Refusal(
        "AccessDenied",
        f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
        status=403,
    )


class InvalidInput(ServiceException):
    code = "InvalidInput"


ERROR_ANSWER = """<ErrorResponse xmlns="{namespace}">
  <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>
  <RequestId>request-id</RequestId>
</ErrorResponse>"""


@dataclass
class Job:
    """One Access Advisor job, as AWS keeps it for a while after it is created."""

    job_id: str
    arn: str
    created: datetime
    polls: int = 0
    completed: datetime | None = None


@dataclass
class Emulator:
    """What the extension answers, seeded and steered by the test; safe to share with the threads
    of a collection and of a moto server."""

    # Principal ARN -> its ServicesLastAccessed entries (see `service_usage`).
    usage: dict[str, list[dict]] = field(default_factory=dict)
    # The poll of GetServiceLastAccessedDetails on which a job completes (1: the first).
    polls_to_complete: int = 2
    # ServicesLastAccessed per page when the caller does not ask for MaxItems; AWS's default.
    access_advisor_page_size: int = 100
    # Principals deleted after GetAccountAuthorizationDetails listed them.
    vanished: set[str] = field(default_factory=set)
    # Principal ARN -> (code, message) of the Access Advisor jobs that fail.
    failing_jobs: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Every request received, by operation, throttled ones included.
    requests: Counter[str] = field(default_factory=Counter)
    # The requests answered Throttling, by operation (told to by `throttle`, or over the limit).
    throttled: Counter[str] = field(default_factory=Counter)
    # Seconds before each answer (refusals included): the network's and AWS's time per call.
    latency: float = 0.0
    # Operation -> what happens in AWS as a request of it arrives (see `before`).
    hooks: dict[str, list] = field(default_factory=dict)
    # Access Advisor jobs by JobId.
    jobs: dict[str, Job] = field(default_factory=dict)
    _to_throttle: Counter[str] = field(default_factory=Counter)
    # Per account, AWS's request limit as a token bucket: (rate a second, burst), and the
    # account's (tokens, when last filled).
    _limit: tuple[float, float] | None = None
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # Steering -----------------------------------------------------------------------------------

    def throttle(self, operation: str, times: int = 1) -> None:
        """The next `times` requests of `operation` answer HTTP 400 Throttling, which botocore
        retries."""
        with self._lock:
            self._to_throttle[operation] += times

    def limit(self, rate: float | None, burst: float | None = None) -> None:
        """Each account may make `rate` requests a second (after a burst of `burst`, one
        second's worth unless told); the requests beyond answer HTTP 400 Throttling, as AWS's
        per-account throttling does. None lifts the limit."""
        with self._lock:
            self._limit = None if rate is None else (rate, rate if burst is None else burst)
            self._buckets.clear()

    def before(self, operation: str, action) -> None:
        """Run `action()` each time a request of `operation` arrives, before it is answered:
        something that changes while a collection runs."""
        with self._lock:
            self.hooks.setdefault(operation, []).append(action)

    def vanish(self, arn: str) -> None:
        """The principal is deleted right after GetAccountAuthorizationDetails listed it: it is
        still listed, but Access Advisor no longer finds it."""
        with self._lock:
            self.vanished.add(arn)

    def fail_job(self, arn: str, code: str = "ServiceFailure", message: str = "") -> None:
        """Access Advisor jobs of the principal report FAILED with this error."""
        with self._lock:
            self.failing_jobs[arn] = (code, message or f"could not generate the report for {arn}")

    @staticmethod
    def credential_report(*, ready: bool, account_id: str = OWN_ACCOUNT_ID) -> None:
        """Whether a credential report from the last four hours exists: if so
        GenerateCredentialReport answers COMPLETE at once, otherwise STARTED, then COMPLETE."""
        iam_backends[account_id][PARTITION].credential_report = ready or None

    @staticmethod
    def aws_managed_policy(name: str, account_id: str = OWN_ACCOUNT_ID) -> str:
        """Make one of AWS's managed policies exist in the account (moto loads either all ~1,300
        or none); returns its ARN."""
        backend = iam_backends[account_id][PARTITION]
        policy = AWSManagedPolicy.from_data(
            name, account_id, REGION, json.loads(aws_managed_policies_data)[name]
        )
        if policy.arn not in backend.managed_policies:
            backend.aws_managed_policies.append(policy)
            backend.managed_policies[policy.arn] = policy
        return policy.arn

    # Sessions -----------------------------------------------------------------------------------

    @staticmethod
    def session(account_id: str = OWN_ACCOUNT_ID) -> boto3.Session:
        """An administrator's session in the account, as through OrganizationAccountAccessRole
        (made directly in moto, so it works for accounts whose roles do not exist yet)."""
        if account_id == OWN_ACCOUNT_ID:
            return boto3.Session(region_name=REGION, **FAKE_CREDENTIALS)
        role = sts_backends[OWN_ACCOUNT_ID][PARTITION].assume_role(
            region_name=REGION,
            role_session_name="emulator",
            role_arn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
            policy=None,
            duration=3600,
            external_id=None,
        )
        return boto3.Session(
            region_name=REGION,
            aws_access_key_id=role.access_key_id,
            aws_secret_access_key=role.secret_access_key,
            aws_session_token=role.session_token,
        )

    # Answers ------------------------------------------------------------------------------------

    def _received(self, operation: str, account_id: str) -> None:
        with self._lock:
            self.requests[operation] += 1
            hooks = list(self.hooks.get(operation, []))
            if self._to_throttle[operation] > 0:
                self._to_throttle[operation] -= 1
                refused = True
            else:
                refused = not self._take_token(account_id)
            if refused:
                self.throttled[operation] += 1
                raise throttling()
        for action in hooks:
            action()

    def _take_token(self, account_id: str) -> bool:
        """Whether the account's bucket has a request left (called holding the lock)."""
        if self._limit is None:
            return True
        rate, burst = self._limit
        now = time.monotonic()
        tokens, filled = self._buckets.get(account_id, (burst, now))
        tokens = min(burst, tokens + (now - filled) * rate)
        if tokens < 1:
            self._buckets[account_id] = (tokens, now)
            return False
        self._buckets[account_id] = (tokens - 1, now)
        return True

    def _start_job(self, account_id: str, arn: str) -> Job:
        with self._lock:
            if arn in self.vanished or not _principal_exists(account_id, arn):
                raise NotFoundException(f"The entity with ARN {arn} cannot be found.")
            job = Job(str(uuid.uuid4()), arn, _now())
            self.jobs[job.job_id] = job
            return job

    def _job_answer(self, job_id: str, max_items: int | None, marker: str | None) -> dict:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise NotFoundException(f"No job found with JobId {job_id}.")
            answer = {"JobType": "ACTION_LEVEL", "JobCreationDate": job.created}
            if marker is None:
                job.polls += 1
            if job.completed is None and job.polls < self.polls_to_complete:
                return {**answer, "JobStatus": "IN_PROGRESS", "ServicesLastAccessed": []}
            job.completed = job.completed or _now()
            answer["JobCompletionDate"] = job.completed
            if job.arn in self.failing_jobs:
                code, message = self.failing_jobs[job.arn]
                return {
                    **answer,
                    "JobStatus": "FAILED",
                    "ServicesLastAccessed": [],
                    "Error": {"Code": code, "Message": message},
                }
            services = self.usage.get(job.arn, [])
            page, next_marker = _page(services, max_items or self.access_advisor_page_size, marker)
            answer.update(JobStatus="COMPLETED", ServicesLastAccessed=page)
            return {**answer, "IsTruncated": next_marker is not None, "Marker": next_marker}

    def _check_assume_role(self, role_arn: str, external_id: str | None) -> None:
        """As AWS: the role must exist and its trust policy's sts:ExternalId must match."""
        parts = role_arn.split(":")
        account_id = parts[4] if len(parts) > 5 else ""
        roles = iam_backends[account_id][PARTITION].roles.values() if account_id.isdigit() else []
        role = next((role for role in roles if role.arn == role_arn), None)
        if role is None:
            raise access_denied(role_arn)
        required = _external_ids(json.loads(role.assume_role_policy_document))
        if required and external_id not in required:
            raise access_denied(role_arn)


def without_retry_delays(monkeypatch) -> None:
    """botocore retries at once instead of backing off for up to seconds per throttled call."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)


def _now() -> datetime:
    return datetime.now(UTC)


def _principal_exists(account_id: str, arn: str) -> bool:
    backend = iam_backends[account_id][PARTITION]
    kind, _, name = arn.split(":")[-1].partition("/")
    name = name.rsplit("/", 1)[-1]
    if kind == "user":
        candidates = [backend.users.get(name)]
    elif kind == "group":
        candidates = [backend.groups.get(name)]
    else:  # moto keeps roles by id
        candidates = [role for role in backend.roles.values() if role.name == name]
    return any(principal is not None and principal.arn == arn for principal in candidates)


def _external_ids(trust_policy: dict) -> set[str]:
    """The ExternalIds a trust policy's StringEquals conditions accept."""
    statements = trust_policy.get("Statement", [])
    accepted: set[str] = set()
    for statement in [statements] if isinstance(statements, dict) else statements:
        value = statement.get("Condition", {}).get("StringEquals", {}).get("sts:ExternalId")
        if value is not None:
            accepted.update([value] if isinstance(value, str) else value)
    return accepted


def _page(items: list, size: int, marker: str | None) -> tuple[list, str | None]:
    """One page of `items` from the opaque `marker`, and the marker of the next page if any."""
    try:
        start = int(base64.urlsafe_b64decode(marker).decode()) if marker else 0
    except ValueError:
        raise InvalidInput(f"Invalid Marker: {marker}") from None
    end = start + size
    if end >= len(items):
        return items[start:], None
    return items[start:end], base64.urlsafe_b64encode(str(end).encode()).decode()


# moto's response classes, extended ---------------------------------------------------------------

_active: Emulator | None = None


def _emulator() -> Emulator:
    if _active is None:
        raise RuntimeError("the AWS emulator is not installed: use `with emulate():`")
    return _active


def _generate_service_last_accessed_details(self: IamResponse) -> ActionResult:
    job = _emulator()._start_job(self.current_account, self._get_param("Arn"))
    return ActionResult({"JobId": job.job_id})


def _get_service_last_accessed_details(self: IamResponse) -> ActionResult:
    return ActionResult(
        _emulator()._job_answer(
            self._get_param("JobId"), self._get_param("MaxItems"), self._get_param("Marker")
        )
    )


def _policy_detail(policy) -> dict:
    """A ManagedPolicyDetail as AWS writes it; moto's lacks PolicyName and PolicyId."""
    detail = {
        "PolicyName": policy.name,
        "PolicyId": policy.id,
        "Arn": policy.arn,
        "Path": policy.path,
        "DefaultVersionId": policy.default_version_id,
        "AttachmentCount": policy.attachment_count,
        "IsAttachable": True,
        "CreateDate": policy.create_date,
        "UpdateDate": policy.update_date,
        "PolicyVersionList": policy.policy_version_list,
    }
    if policy.description:
        detail["Description"] = policy.description
    return detail


def _get_account_authorization_details(self: IamResponse) -> ActionResult:
    """moto's answer, paged on MaxItems (AWS's default: 100) across its four lists, and listing
    AWS managed policies only when attached, as AWS does."""
    details = self.backend.get_account_authorization_details(self._get_param("Filter", []))
    items = [
        *(("UserDetailList", user) for user in details["users"]),
        *(("GroupDetailList", group) for group in details["groups"]),
        *(("RoleDetailList", role) for role in details["roles"]),
        *(
            ("Policies", _policy_detail(policy))
            for policy in details["managed_policies"]
            if not isinstance(policy, AWSManagedPolicy) or policy.attachment_count > 0
        ),
    ]
    page, marker = _page(items, self._get_param("MaxItems") or 100, self._get_param("Marker"))
    result = {
        key: [item for kind, item in page if kind == key] for key in AUTHORIZATION_DETAILS_KEYS
    }
    return ActionResult({**result, "IsTruncated": marker is not None, "Marker": marker})


def _call_action(original):
    """Before moto answers: wait the latency, count the request, throttle it if told to or over
    the account's limit, refuse AssumeRole as AWS would. The error goes back as an HTTP answer,
    through botocore's parsing and retries."""

    def call_action(self):
        action = self._get_action()
        emulator = _emulator()
        if emulator.latency:
            time.sleep(emulator.latency)
        try:
            emulator._received(action, self.current_account)
            if action == "AssumeRole":
                emulator._check_assume_role(
                    self._get_param("RoleArn"), self._get_param("ExternalId")
                )
        except Refusal as exc:
            namespace = get_service_model(self.boto3_service_name).metadata["xmlNamespace"]
            body = ERROR_ANSWER.format(
                namespace=namespace, code=exc.code, message=escape(exc.message)
            )
            headers, body = self._enrich_response({"Content-Type": "text/xml"}, body)
            return exc.status, headers, body
        return original(self)

    return call_action


def _list_accounts(original):
    """As AWS: an account outside an organization cannot list its accounts."""

    def list_accounts(self: OrganizationsResponse):
        if self.organizations_backend.org is None:
            raise AWSOrganizationsNotInUseException()
        return original(self)

    return list_accounts


def _replacing(method):
    """An extension that takes the place of moto's method, or adds one moto lacks."""
    return lambda original: method


_EXTENSIONS = {
    IamResponse: {
        "generate_service_last_accessed_details": _replacing(
            _generate_service_last_accessed_details
        ),
        "get_service_last_accessed_details": _replacing(_get_service_last_accessed_details),
        "get_account_authorization_details": _replacing(_get_account_authorization_details),
        "call_action": _call_action,
    },
    TokenResponse: {"call_action": _call_action},
    OrganizationsResponse: {"list_accounts": _list_accounts},
}


@contextmanager
def emulate(emulator: Emulator | None = None):
    """Install the extension into moto's response classes for the duration; yields the
    emulator. moto's own state is reset by `mock_aws` (or `moto_server`), not here."""
    global _active
    if _active is not None:
        raise RuntimeError("the AWS emulator is already installed")
    _active = emulator or Emulator()
    saved = []
    try:
        for cls, methods in _EXTENSIONS.items():
            for name, extend in methods.items():
                saved.append((cls, name, cls.__dict__.get(name)))
                setattr(cls, name, extend(getattr(cls, name, None)))
        yield _active
    finally:
        for cls, name, original in reversed(saved):
            if original is None:
                delattr(cls, name)
            else:
                setattr(cls, name, original)
        _active = None


@contextmanager
def moto_server():
    """moto as an HTTP server on a free local port, in this process (so it shares its state,
    and the extension installed by `emulate()`, with the test); yields its URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto_api_backend.reset()
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        moto_api_backend.reset()
