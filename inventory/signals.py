"""What the inventory tells the apps built on it, without knowing them."""

from django.dispatch import Signal

# Sent once a collection or import is committed as its account's current run: `account`, `run`.
collection_completed = Signal()
