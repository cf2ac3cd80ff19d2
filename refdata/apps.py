from django.apps import AppConfig


class RefdataConfig(AppConfig):
    """The versioned cache of reference data (refdata/cache.py). It names no domain model:
    each owning app registers its namespaces and the models that invalidate them in its
    own ready() (accounts, loans, mandates, payments: their refdata.py)."""

    name = "refdata"
    verbose_name = "Reference data cache"
