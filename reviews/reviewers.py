"""Who reviews an item, and whose own access it is.

In order: the principal's owner tag (an e-mail or a username), the account's owner, an explicit
assignment of the campaign's definition, the fallback reviewer. Nobody reviews their own access:
an IAM user is a person's own when its name, or its owner tag, is that person's username or
e-mail. Such an item goes to the fallback reviewer, and to nobody (the orphan queue) when the
fallback reviewer is that person too.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from django.contrib.auth import get_user_model

from inventory.models import Principal
from reviews.models import ReviewItem

Source = ReviewItem.ReviewerSource


class Directory:
    """The active users, found by username or e-mail without a query per item."""

    def __init__(self):
        self._users = list(get_user_model().objects.filter(is_active=True).order_by("pk"))
        self._by_key: dict[str, object] = {}
        # A username or an e-mail address names its user before any e-mail's local part does:
        # a tag "john" is the user john, not whoever is john@example.com.
        for user in self._users:
            for key in _exact_keys(user):
                self._by_key.setdefault(key, user)
        for user in self._users:
            for key in _keys(user):
                self._by_key.setdefault(key, user)

    def users(self) -> list:
        return list(self._users)

    def find(self, value) -> object | None:
        if not isinstance(value, str) or not value.strip():
            return None
        return self._by_key.get(value.strip().lower())


def _exact_keys(user) -> set[str]:
    keys = {user.get_username().lower()}
    if user.email:
        keys.add(user.email.lower())
    return keys


def _keys(user) -> set[str]:
    keys = _exact_keys(user)
    if user.email:
        keys.add(user.email.lower().split("@")[0])
    return keys


def is_own_access(user, *, principal_kind: str, principal_name: str, tags: dict, owner_tag: str):
    """Whether the principal is the user's own IAM user."""
    if user is None or principal_kind != Principal.Kind.USER:
        return False
    keys = _keys(user)
    owner = tags.get(owner_tag) if isinstance(tags, dict) else None
    return principal_name.lower() in keys or (
        isinstance(owner, str) and owner.strip().lower() in keys
    )


def item_is_own_access(user, item: ReviewItem) -> bool:
    return is_own_access(
        user,
        principal_kind=item.principal_kind,
        principal_name=item.principal_name,
        tags=item.facts.get("principal", {}).get("tags", {}),
        owner_tag=item.campaign.rules.get("owner_tag", "owner"),
    )


def resolve(
    principal: Principal,
    *,
    account_owner,
    assignments: list[tuple[str, object]],
    fallback,
    owner_tag: str,
    directory: Directory,
) -> tuple[object | None, str]:
    """The reviewer of a principal's items and where the choice came from."""
    # A fallback reviewer who can no longer sign in leaves the items to the orphan queue,
    # where the manager sees them, rather than with someone who will never decide them.
    if fallback is not None and not fallback.is_active:
        fallback = None
    candidates = [
        (directory.find(principal.tags.get(owner_tag)), Source.TAG),
        (
            account_owner if account_owner and account_owner.is_active else None,
            Source.ACCOUNT_OWNER,
        ),
        (
            next(
                (user for pattern, user in assignments if fnmatchcase(principal.arn, pattern)), None
            ),
            Source.ASSIGNED,
        ),
        (fallback, Source.FALLBACK),
    ]
    for user, source in candidates:
        if user is None:
            continue
        if is_own_access(
            user,
            principal_kind=principal.kind,
            principal_name=principal.name,
            tags=principal.tags,
            owner_tag=owner_tag,
        ):
            if fallback is not None and not is_own_access(
                fallback,
                principal_kind=principal.kind,
                principal_name=principal.name,
                tags=principal.tags,
                owner_tag=owner_tag,
            ):
                return fallback, Source.SELF_REVIEW
            return None, Source.NONE
        return user, source
    return None, Source.NONE
