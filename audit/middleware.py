import re
import uuid

from audit import trail

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class AuditContextMiddleware:
    """Gives every event a request records the request's id, source IP and signed-in user.

    A request id sent by a proxy in X-Request-ID is kept when it looks like one, so a request can
    be followed from the proxy's logs into the audit trail; otherwise one is made up.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        sent = request.headers.get("X-Request-ID", "")
        request_id = sent if _REQUEST_ID.match(sent) else uuid.uuid4().hex
        with trail.context(
            request_id=request_id,
            source_ip=request.META.get("REMOTE_ADDR") or None,
            actor=request.user,
        ):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
