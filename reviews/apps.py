from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReviewsConfig(AppConfig):
    name = "reviews"
    verbose_name = _("Access reviews")

    def ready(self):
        from inventory.signals import collection_completed

        collection_completed.connect(_verify_confirmed_changes, dispatch_uid="reviews.verify")


def _verify_confirmed_changes(sender, account, run, **kwargs):
    """A new collection or import checks the changes people confirmed making by hand."""
    from reviews.remediate import verify_from_inventory

    verify_from_inventory(account)
