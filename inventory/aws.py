"""The one module that talks to AWS. Everything outside it sees plain dicts and `AwsError`.

Clients have explicit timeouts and botocore's retries (standard or adaptive mode) for throttling,
and each client paces itself once AWS throttles it (`Pacer`): AWS limits requests per account, so
a collection's threads share their client's pace rather than each backing off alone.
Every client honours the AWS SDK's own `AWS_ENDPOINT_URL`, which is how tests and demos point
Attest at an AWS emulator. Each account is read through one session: Attest's own credentials, or
a role assumed with the account's ExternalId and refreshed before it expires.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from inventory.archive import Recorder

THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}
)


# Failures of the connection rather than answers to the request: worth trying again later.
CONNECTION_ERRORS = frozenset(
    {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ProxyConnectionError",
    }
)


class AwsError(Exception):
    """An AWS call that failed after botocore's retries, with AWS's error code and message."""

    def __init__(self, operation: str, code: str, message: str, request_id: str = ""):
        self.operation = operation
        self.code = code
        self.message = message
        self.request_id = request_id
        super().__init__(f"{operation}: {code}: {message}")

    @property
    def is_throttling(self) -> bool:
        return self.code in THROTTLING_CODES

    @property
    def is_transient(self) -> bool:
        """Throttled, or AWS not reached: the same call may well succeed later."""
        return self.is_throttling or self.code in CONNECTION_ERRORS

    def as_dict(self) -> dict:
        return {
            "operation": self.operation,
            "code": self.code,
            "message": self.message,
            "request_id": self.request_id,
        }


class NoSuchEntity(AwsError):
    """The principal or job was deleted (or expired) between two calls."""


class CallLog:
    """Counts API calls per operation, and the attempts botocore retried, across a run's clients."""

    def __init__(self):
        self._calls: Counter[str] = Counter()
        self._attempts = 0
        self._lock = threading.Lock()

    def attach(self, client) -> None:
        client.meta.events.register("before-parameter-build", self._on_call)
        client.meta.events.register("needs-retry", self._on_attempt)

    def _on_call(self, model, **kwargs):
        with self._lock:
            self._calls[model.name] += 1

    def _on_attempt(self, **kwargs):
        with self._lock:
            self._attempts += 1

    def calls(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._calls.items()))

    @property
    def retries(self) -> int:
        with self._lock:
            return max(0, self._attempts - sum(self._calls.values()))


class Pacer:
    """Paces one client's requests to the rate AWS accepts from the account.

    Requests go out unpaced until AWS throttles the client while it is busy (at least `BUSY`
    answers in the last second; a quieter client is left to botocore's back-off alone). From
    then on they leave evenly spaced at `rate` a second, found as TCP finds a link's capacity:
    it starts from what AWS accepted in the last second and doubles each second until the next
    throttle; after that each throttle takes 5% off (at most once a second, so throttles
    answered together count once) and each second without one adds a request a second, so the
    pace stays just under AWS's limit. Threads sharing the client wait their turn instead of
    each backing off on its own, which left the account idle while every thread slept and let
    calls run out of attempts.
    """

    BUSY = 5
    DECREASE = 0.95
    MINIMUM = 0.5

    def __init__(self, clock=time.monotonic, sleep=time.sleep):
        self.rate: float | None = None
        self._clock = clock
        self._sleep = sleep
        self._starting = False
        self._sent = float("-inf")
        self._lowered_at = float("-inf")
        self._accepted: deque[float] = deque()
        self._lock = threading.Lock()

    def attach(self, client) -> None:
        # First: a handler that answers in place of AWS (an emulator in process) would
        # otherwise answer before the request waited for its slot.
        client.meta.events.register_first("before-send", self.before_send)
        client.meta.events.register("needs-retry", self.on_answer)

    def before_send(self, **kwargs) -> None:
        # No slots are booked ahead: each waiting request looks again at the current rate when
        # it wakes, so a pace that rises (or falls) applies to the requests already waiting.
        while True:
            with self._lock:
                if self.rate is None:
                    return
                now = self._clock()
                interval = 1 / self.rate
                wait = self._sent + interval - now
                if wait < 0.001:
                    # Up to one interval late keeps the schedule; later, the client was idle.
                    self._sent = self._sent + interval if wait > -interval else now
                    return
            self._sleep(wait)

    def on_answer(self, response=None, **kwargs) -> None:
        # Returns None always: a needs-retry handler's value would ask botocore to retry.
        if response is None:  # no answer at all (connection error): says nothing of the pace
            return
        throttled = response[1].get("Error", {}).get("Code") in THROTTLING_CODES
        with self._lock:
            now = self._clock()
            while self._accepted and self._accepted[0] < now - 1:
                self._accepted.popleft()
            if not throttled:
                self._accepted.append(now)
                if self.rate is not None:
                    self.rate += 1 if self._starting else 1 / self.rate
            elif now - self._lowered_at >= 1 and (
                self.rate is not None or len(self._accepted) >= self.BUSY
            ):
                measured = self.rate is None or self._starting
                base = len(self._accepted) if measured else self.rate
                self._starting = self.rate is None
                self.rate = max(self.MINIMUM, base * self.DECREASE)
                self._lowered_at = now


def client_config() -> Config:
    return Config(
        connect_timeout=settings.AWS_CONNECT_TIMEOUT,
        read_timeout=settings.AWS_READ_TIMEOUT,
        # AWS_MAX_ATTEMPTS counts the first attempt, as the SDK's own variable does; botocore's
        # `max_attempts` would count the retries only, one attempt more.
        retries={"mode": settings.AWS_RETRY_MODE, "total_max_attempts": settings.AWS_MAX_ATTEMPTS},
        max_pool_connections=settings.COLLECT_CONCURRENCY + 4,
        user_agent_extra="attest",
    )


def _error(operation: str, exc: Exception) -> AwsError:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "Unknown")
        kind = NoSuchEntity if code == "NoSuchEntity" else AwsError
        return kind(
            operation,
            code,
            error.get("Message", str(exc)),
            exc.response.get("ResponseMetadata", {}).get("RequestId", ""),
        )
    return AwsError(operation, type(exc).__name__, str(exc))


# Reading a service's model and the endpoint rules from disk costs a third of a second per
# client; every session of the process shares one loader, which caches what it read, so a
# remediation or a collection pays for it once per worker rather than once per account.
_LOADER = botocore.loaders.create_loader()


def _core_session() -> botocore.session.Session:
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    return core


@dataclass(frozen=True)
class CallerIdentity:
    arn: str
    account_id: str


class AwsSession:
    """One account's AWS session; its clients share a call log and a recorder of answers."""

    def __init__(
        self,
        role_arn: str = "",
        external_id: str = "",
        *,
        calls: CallLog | None = None,
        recorder: Recorder | None = None,
    ):
        self.calls = calls or CallLog()
        self.recorder = recorder
        base = boto3.session.Session(
            botocore_session=_core_session(), region_name=settings.AWS_DEFAULT_REGION
        )
        if role_arn:
            self.session = self._assumed(base, role_arn, external_id)
        else:
            self.session = base
        self._clients: dict[str, object] = {}

    def _assumed(self, base, role_arn: str, external_id: str):
        sts = self._attach(base.client("sts", config=client_config()))
        kwargs = {"RoleArn": role_arn, "RoleSessionName": settings.AWS_ROLE_SESSION_NAME}
        if external_id:
            kwargs["ExternalId"] = external_id

        def refresh():
            answer = _call(sts, "AssumeRole", **kwargs)["Credentials"]
            return {
                "access_key": answer["AccessKeyId"],
                "secret_key": answer["SecretAccessKey"],
                "token": answer["SessionToken"],
                "expiry_time": answer["Expiration"].isoformat(),
            }

        credentials = RefreshableCredentials.create_from_metadata(
            metadata=refresh(), refresh_using=refresh, method="sts-assume-role"
        )
        core = _core_session()
        core._credentials = credentials
        return boto3.session.Session(botocore_session=core, region_name=base.region_name)

    def _attach(self, client):
        self.calls.attach(client)
        Pacer().attach(client)
        return client

    def client(self, service: str):
        if service not in self._clients:
            self._clients[service] = self._attach(
                self.session.client(service, config=client_config())
            )
        return self._clients[service]

    def call(self, service: str, operation: str, **params) -> dict:
        """One API call by its AWS operation name; the answer keeps its ResponseMetadata."""
        return _call(self.client(service), operation, **params)

    def caller_identity(self) -> CallerIdentity:
        answer = _call(self.client("sts"), "GetCallerIdentity")
        return CallerIdentity(answer["Arn"], answer["Account"])

    def iam(self) -> IamReader:
        return IamReader(self.client("iam"), self.recorder)

    def organization_accounts(self) -> list[dict]:
        """Every account of the organization: Id, Name, Email and State."""
        client = self.client("organizations")
        accounts, token = [], None
        while True:
            answer = _call(client, "ListAccounts", **({"NextToken": token} if token else {}))
            accounts.extend(answer.get("Accounts", []))
            token = answer.get("NextToken")
            if not token:
                return accounts


def request_id(answer: dict) -> str:
    """The request id AWS gave an answer: what ties a change to AWS's own records."""
    return answer.get("ResponseMetadata", {}).get("RequestId", "")


def _call(client, operation: str, **params) -> dict:
    method = getattr(client, botocore.xform_name(operation))
    try:
        return method(**params)
    except (ClientError, BotoCoreError) as exc:
        raise _error(operation, exc) from exc


class IamReader:
    """The read-only IAM calls a collection makes, each answer kept by the recorder."""

    def __init__(self, client, recorder: Recorder | None = None):
        self.client = client
        self.recorder = recorder

    def _call(self, operation: str, **params) -> dict:
        answer = _call(self.client, operation, **params)
        if self.recorder is not None:
            self.recorder.add({"operation": operation, "request": params, "response": answer})
        return answer

    def authorization_details(self, page_size: int = 1000) -> Iterator[dict]:
        """GetAccountAuthorizationDetails page by page, following Marker while IsTruncated."""
        marker = None
        while True:
            params = {"MaxItems": page_size}
            if marker:
                params["Marker"] = marker
            page = self._call("GetAccountAuthorizationDetails", **params)
            yield page
            if not page.get("IsTruncated"):
                return
            marker = page["Marker"]

    def credential_report(self, timeout: float, poll: float = 2.0) -> str:
        """A credential report no older than AWS's 4 hours: generated if needed, then read."""
        deadline = time.monotonic() + timeout
        while self._call("GenerateCredentialReport").get("State") != "COMPLETE":
            if time.monotonic() > deadline:
                raise AwsError("GenerateCredentialReport", "Timeout", "the report was not ready")
            time.sleep(poll)
        content = self._call("GetCredentialReport")["Content"]
        return content.decode("utf-8") if isinstance(content, bytes) else content

    def start_service_last_accessed(self, arn: str) -> str:
        """Start an Access Advisor job (action level) for one principal; returns its JobId."""
        return self._call(
            "GenerateServiceLastAccessedDetails", Arn=arn, Granularity="ACTION_LEVEL"
        )["JobId"]

    def service_last_accessed(self, job_id: str) -> tuple[str, dict | None]:
        """The job's status, and once COMPLETED its answer with every page merged.

        botocore has no paginator for this operation, so pages are followed on Marker here.
        """
        answer = self._call("GetServiceLastAccessedDetails", JobId=job_id)
        status = answer["JobStatus"]
        if status != "COMPLETED":
            return status, answer
        services = list(answer.get("ServicesLastAccessed", []))
        while answer.get("IsTruncated"):
            answer = self._call(
                "GetServiceLastAccessedDetails", JobId=job_id, Marker=answer["Marker"]
            )
            services.extend(answer.get("ServicesLastAccessed", []))
        return status, {"JobStatus": status, "ServicesLastAccessed": services}
