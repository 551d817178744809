"""What every endpoint of the REST API shares: token sign-in, cursor pages, errors.

The API keeps the pages' rules: the same roles and the same scoped querysets, so an object out of
a user's reach is a 404 and a change their role may not make is a 403.
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, status, viewsets
from rest_framework.permissions import BasePermission

from audit import trail


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "config.authentication.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`; keys come from `manage.py create_api_token USERNAME`.",
        }


class HasPermission(BasePermission):
    """The view's `permission` (a Django permission name) is needed for any request."""

    def has_permission(self, request, view):
        return request.user.has_perm(view.permission)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The change conflicts with the object's state.")
    default_code = "conflict"


class PreconditionRequired(exceptions.APIException):
    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_detail = _(
        "Send the version you decided on (If-Match or `version`): a change to an object that "
        "changed meanwhile is refused."
    )
    default_code = "precondition_required"


class ApiMixin:
    """Every API view (which Django REST framework exempts from the sign-in page's redirect:
    the API answers 401 instead)."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # A token's user is known only now, after the audit middleware ran.
        trail.signed_in(request.user)

    def check_permissions(self, request):
        # A method the URL does not take is a 405 for anyone signed in, whatever their role
        # (as on the pages), rather than a 403 from a permission asked about no action.
        method = request.method.lower()
        actions = getattr(self, "action_map", None)
        if (
            request.user.is_authenticated
            and actions is not None
            and method not in actions
            and method not in ("options", "head")
        ):
            raise exceptions.MethodNotAllowed(request.method)
        super().check_permissions(request)


class ReadOnlyViewSet(ApiMixin, viewsets.ReadOnlyModelViewSet):
    pass


_ERRORS = {
    "400": "The request is invalid: the body names each field that is wrong.",
    "401": "No credentials, or a token unknown or revoked.",
    "403": "The user's role may not do this.",
    "404": "Nothing of this id is in the user's reach (or the page cursor is invalid).",
}


def document_errors(result, generator, request, public):
    """drf-spectacular hook: every operation documents the answers every operation can give."""
    error = {
        "type": "object",
        "description": "`detail` says what is wrong; a field's errors come under its name.",
        "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
        "additionalProperties": True,
    }
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = error
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code, description in _ERRORS.items():
                responses.setdefault(
                    code,
                    {
                        "description": description,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        },
                    },
                )
    return result
