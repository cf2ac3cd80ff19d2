"""Test settings: the real services, isolated from development data.

Postgres: Django's test database. Redis: its own database number. DynamoDB: a table
prefix unique to this test run (and to each xdist worker), tables dropped at the end.
"""

import os
import uuid
from urllib.parse import urlparse, urlunparse

from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from .settings import *  # noqa: F403
from .settings import REDIS_URL

DEBUG = False
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = False
ALLOWED_HOSTS = ["*"]

# Under pytest-xdist (``bin/test -n 2``) each worker ("gw0", "gw1"...) has stores of its own:
# pytest-django suffixes the test database's name, the table prefix gets the worker's id
# and the Redis database is the worker's entry of TEST_REDIS_DB, a comma-separated list
# (a test empties its whole Redis database). A subprocess that inherits the variables
# lands on its worker's stores.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_redis_dbs = [db.strip() for db in os.environ.get("TEST_REDIS_DB", "15,14,13,12").split(",")]
_worker_index = int(_WORKER[2:]) if _WORKER.startswith("gw") else 0
if _worker_index >= len(_redis_dbs):
    raise ImproperlyConfigured(
        f"TEST_REDIS_DB names {len(_redis_dbs)} Redis database(s) ({','.join(_redis_dbs)}): "
        f"xdist worker {_WORKER} needs one of its own; name one more, comma-separated"
    )
_redis = urlparse(REDIS_URL)
REDIS_URL = urlunparse(_redis._replace(path=f"/{_redis_dbs[_worker_index]}"))
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": os.environ.get("TEST_CACHE_PREFIX") or f"test{uuid.uuid4().hex[:8]}",
    }
}
CELERY_BROKER_URL = CELERY_RESULT_BACKEND = REDIS_URL
# Each run's embedded worker consumes only its own run's tasks. The TEST_* variables let a
# subprocess (the fault-injection suite's real Celery workers and servers) join a run:
# its queue, tables and cache keys.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("TEST_CELERY_QUEUE") or f"test-{uuid.uuid4().hex[:8]}"
BACKGROUND_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}-background"
CELERY_TASK_QUEUES = [
    Queue(name, routing_key=name) for name in (CELERY_TASK_DEFAULT_QUEUE, BACKGROUND_QUEUE)
]
if os.environ.get("TEST_CELERY_VISIBILITY_TIMEOUT"):  # a killed worker's task comes back soon
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **CELERY_BROKER_TRANSPORT_OPTIONS,  # noqa: F405
        "visibility_timeout": int(os.environ["TEST_CELERY_VISIBILITY_TIMEOUT"]),
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }

DYNAMODB_TABLE_PREFIX = os.environ.get("TEST_DYNAMODB_PREFIX") or f"test_{uuid.uuid4().hex[:10]}_"
if _WORKER:
    DYNAMODB_TABLE_PREFIX = f"{DYNAMODB_TABLE_PREFIX}{_WORKER}_"

# The test client's address; not left to DJANGO_DEBUG in .env (the tests run with DEBUG off).
METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
if os.environ.get("TEST_LOG_LEVEL"):  # a test's subprocess whose log the test reads
    LOGGING["handlers"] = {"stderr": {"class": "logging.StreamHandler"}}
    LOGGING["root"] = {"level": os.environ["TEST_LOG_LEVEL"], "handlers": ["stderr"]}

# The live server's threads would keep pooled connections open past the test database's
# teardown; tests open plain connections (the pool itself is exercised by bin/run). A server
# process of the fault suite (gunicorn, stopped before the teardown) keeps it: TEST_DB_POOL.
if not os.environ.get("TEST_DB_POOL"):
    DATABASES["default"]["OPTIONS"].pop("pool", None)  # noqa: F405

# The replica alias is a test mirror of default (the same test database through another
# connection), so every test could read it. Reports read it only in the tests that switch
# REPORTING_DATABASE to it (ops/tests/test_db.py): a mirror does not see the uncommitted
# rows of a test running inside a transaction.
DATABASES["replica"] = {  # noqa: F405
    **DATABASES["default"],  # noqa: F405
    "OPTIONS": dict(DATABASES["default"]["OPTIONS"]),  # noqa: F405
    "TEST": {"MIRROR": "default"},
}
REPORTING_DATABASE = "default"
# Two runs side by side on one server (a second checkout): a test database of their own.
if os.environ.get("TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DATABASE_NAME"]}  # noqa: F405
