import gc
import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

# What a worker loads once (Django, the apps, every view through the URLconf) lives as long as
# the worker: frozen, it is left out of the cycle collector's passes, which otherwise walk its
# 115,000 objects and stall the request that triggers a full pass for tens of milliseconds.
import_module(settings.ROOT_URLCONF)
gc.freeze()
