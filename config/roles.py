"""The roles of Attest, kept as Django groups with permissions.

A user holds a role by being in its group; a superuser holds every role. Groups are created and
granted their permissions after every migration, so a new permission reaches its role by
deploying. Permissions an administrator adds to a group by hand are left alone.
"""

from django.contrib.auth.models import Group, Permission

REVIEWER = "reviewer"
MANAGER = "manager"
AUDITOR = "auditor"
ADMINISTRATOR = "administrator"

_VIEW_INVENTORY = ["inventory.view_awsaccount", "inventory.view_principal"]
_VIEW_AUDIT = ["audit.view_auditevent"]
_VIEW_CAMPAIGNS = ["reviews.view_campaign"]
_MANAGE_CAMPAIGNS = ["reviews.manage_campaign"]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    REVIEWER: [],
    MANAGER: [
        *_VIEW_INVENTORY,
        *_VIEW_AUDIT,
        *_VIEW_CAMPAIGNS,
        *_MANAGE_CAMPAIGNS,
        "inventory.start_collection",
    ],
    AUDITOR: [*_VIEW_INVENTORY, *_VIEW_AUDIT, *_VIEW_CAMPAIGNS],
    ADMINISTRATOR: [
        *_VIEW_INVENTORY,
        *_VIEW_AUDIT,
        "inventory.start_collection",
        "inventory.add_awsaccount",
        "inventory.change_awsaccount",
        "inventory.view_collectionrun",
        *_VIEW_CAMPAIGNS,
        *_MANAGE_CAMPAIGNS,
        "reviews.view_campaigndefinition",
        "reviews.add_campaigndefinition",
        "reviews.change_campaigndefinition",
    ],
}


def ensure_roles(**kwargs):
    """Create the role groups and grant each its permissions (post_migrate handler)."""
    wanted = {name for names in ROLE_PERMISSIONS.values() for name in names}
    found = {
        f"{p.content_type.app_label}.{p.codename}": p
        for p in Permission.objects.select_related("content_type")
        if f"{p.content_type.app_label}.{p.codename}" in wanted
    }
    for role, names in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        # A permission of an app that is not migrated yet arrives at a later post_migrate.
        group.permissions.add(*(found[name] for name in names if name in found))
