"""Settings, read from the environment (and from a git-ignored .env for development).

Production mode is simply DJANGO_DEBUG unset or false: there is no separate settings
module, and every security switch below can be overridden by its own variable.
"""

import ipaddress
from pathlib import Path
from urllib.parse import urlparse

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def _url(name: str, default: str, schemes: set[str]) -> str:
    """Read a service URL and refuse a malformed one with a message naming the variable."""
    value = env.str(name, default=default)
    parsed = urlparse(value)
    try:
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is malformed ({exc}): {value!r}") from None
    if parsed.scheme not in schemes or not parsed.hostname:
        raise ImproperlyConfigured(
            f"{name} is malformed: expected {'|'.join(sorted(schemes))}://host:port/..., "
            f"got {value!r}"
        )
    return value


def _budgets(name: str) -> dict[str, tuple[int, int]]:
    """``table=READ:WRITE,table.index=READ:WRITE`` (whole units a second) to tuples."""
    parsed = {}
    for key, value in env.dict(name, default={}).items():
        read, sep, write = str(value).partition(":")
        if not sep or not read.strip().isdigit() or not write.strip().isdigit():
            raise ImproperlyConfigured(
                f"{name} is malformed: {key}={value!r}, expected {key}=READ:WRITE"
            )
        parsed[key.strip()] = (int(read), int(write))
    return parsed


# --- Core -------------------------------------------------------------------------------

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "django-insecure-development-only-key-0123456789abcdefghijklmnopqrstuvwxyz"  # noqa: S105
ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# The lender's name: the admin's header and title, receipts, notifications' sign-off.
LENDER_NAME = env.str("LENDER_NAME", default="Sangam Finance Ltd")

INSTALLED_APPS = [
    "core.admin.site.BackOfficeAdminConfig",  # django.contrib.admin with its site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "core",
    "dynamo",
    "ops",
    "refdata",
    "backup",
    "demo",
    "api",
    "accounts",
    "audit",
    "notifications",
    "sessions_ddb",
    "loans",
    "approvals",
    "payments",
    "mandates",
    "reconciliation",
    "desk",
    "streams",
    "imports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "ops.middleware.RequestContextMiddleware",
    "ops.metrics.RequestMetricsMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "approvals.middleware.InboxCountMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- PostgreSQL (psycopg 3 with Django's connection pool) -------------------------------

DATABASE_URL = _url(
    "DATABASE_URL",
    f"postgres://postgres@127.0.0.1:{env.int('LOCAL_PG_PORT', default=25432)}/backoffice",
    {"postgres", "postgresql", "pgsql"},
)
try:
    _db = env.db_url_config(DATABASE_URL)
except Exception as exc:  # django-environ raises several types for odd URLs
    raise ImproperlyConfigured(f"DATABASE_URL is malformed: {exc}") from None
_db["ENGINE"] = "django.db.backends.postgresql"
_db["CONN_MAX_AGE"] = 0  # the pool keeps connections; Django forbids both at once
_db.setdefault("OPTIONS", {})
_db["OPTIONS"]["connect_timeout"] = env.int("DATABASE_CONNECT_TIMEOUT", default=5)
if env.bool("DATABASE_POOL", default=True):
    _db["OPTIONS"]["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN", default=1),
        "max_size": env.int("DATABASE_POOL_MAX", default=10),
        "timeout": env.int("DATABASE_POOL_TIMEOUT", default=10),
    }
# A statement running longer than this is cancelled (0: never). config/wsgi.py sets it for
# the web process only (WEB_STATEMENT_TIMEOUT_MS, default 5000): a request never waits on a
# runaway query, while Celery jobs, migrations and commands may run long ones.
DATABASE_STATEMENT_TIMEOUT_MS = env.int("DATABASE_STATEMENT_TIMEOUT_MS", default=0)
if DATABASE_STATEMENT_TIMEOUT_MS > 0:
    _db["OPTIONS"]["options"] = (
        f"{_db['OPTIONS'].get('options', '')} -c statement_timeout={DATABASE_STATEMENT_TIMEOUT_MS}"
    ).strip()
# Queries at least this slow are counted (backoffice_db_slow_queries_total) and logged.
DATABASE_SLOW_QUERY_SECONDS = env.float("DATABASE_SLOW_QUERY_SECONDS", default=5.0)
# The database's allotted storage (RDS allocated storage), for the growth alert; 0: unknown.
DATABASE_SIZE_LIMIT_GB = env.float("DATABASE_SIZE_LIMIT_GB", default=0)
DATABASES = {"default": _db}
# A read replica for reports (the dashboard, the DCR/DBS exports, the integrity check) when
# set: same format as DATABASE_URL, the same pool and timeouts. Writes, migrations and every
# other read stay on "default"; see ops/db.py. A replica may be a few seconds behind.
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
if DATABASE_REPLICA_URL:
    _url("DATABASE_REPLICA_URL", DATABASE_REPLICA_URL, {"postgres", "postgresql", "pgsql"})
    try:
        _replica = env.db_url_config(DATABASE_REPLICA_URL)
    except Exception as exc:  # django-environ raises several types for odd URLs
        raise ImproperlyConfigured(f"DATABASE_REPLICA_URL is malformed: {exc}") from None
    DATABASES["replica"] = {
        **_db,
        **{key: _replica.get(key, "") for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT")},
        "OPTIONS": {**_db["OPTIONS"], **_replica.get("OPTIONS", {})},
    }
# The alias reports read (ops.db.reporting()): the replica when there is one.
REPORTING_DATABASE = env.str(
    "REPORTING_DATABASE", default="replica" if DATABASE_REPLICA_URL else "default"
)
if REPORTING_DATABASE not in DATABASES:
    raise ImproperlyConfigured(
        f"REPORTING_DATABASE must be one of {', '.join(sorted(DATABASES))}, "
        f"got {REPORTING_DATABASE!r}"
    )
DATABASE_ROUTERS = ["ops.db.ReportingRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache and Celery broker -----------------------------------------------------

REDIS_URL = _url(
    "REDIS_URL",
    f"redis://127.0.0.1:{env.int('LOCAL_REDIS_PORT', default=26379)}/0",
    {"redis", "rediss"},
)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="bo"),
        "TIMEOUT": 300,
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

# --- DynamoDB ---------------------------------------------------------------------------
# Unset DYNAMODB_ENDPOINT means AWS itself (credentials from the usual AWS chain).

DYNAMODB_ENDPOINT = env.str("DYNAMODB_ENDPOINT", default="") or None
if DYNAMODB_ENDPOINT:
    _url("DYNAMODB_ENDPOINT", DYNAMODB_ENDPOINT, {"http", "https"})
DYNAMODB_REGION = env.str("DYNAMODB_REGION", default="ap-south-1")
DYNAMODB_TABLE_PREFIX = env.str("DYNAMODB_TABLE_PREFIX", default="dev_")
# DynamoDB Local accepts any alphanumeric key pair; AWS uses its own credential chain.
DYNAMODB_ACCESS_KEY = (
    env.str("AWS_ACCESS_KEY_ID", default="localkey" if DYNAMODB_ENDPOINT else "") or None
)
DYNAMODB_SECRET_KEY = (
    env.str("AWS_SECRET_ACCESS_KEY", default="localsecret" if DYNAMODB_ENDPOINT else "") or None
)
DYNAMODB_CONNECT_TIMEOUT = env.float("DYNAMODB_CONNECT_TIMEOUT", default=2.0)
DYNAMODB_READ_TIMEOUT = env.float("DYNAMODB_READ_TIMEOUT", default=5.0)
DYNAMODB_MAX_RETRIES = env.int("DYNAMODB_MAX_RETRIES", default=3)
# What `ddb_tables create` and `ddb_tables template` give every table (dynamo/definition.py,
# docs/aws.md). Protection (point-in-time recovery, KMS encryption, tags, deletion
# protection) is what AWS has and DynamoDB Local lacks: on by default against AWS only.
DYNAMODB_TABLE_PROTECTION = env.bool("DYNAMODB_TABLE_PROTECTION", default=not DYNAMODB_ENDPOINT)
# A KMS key id, ARN or alias for server-side encryption; empty: DynamoDB's AWS managed key.
DYNAMODB_KMS_KEY = env.str("DYNAMODB_KMS_KEY", default="")
DYNAMODB_DELETION_PROTECTION = env.bool("DYNAMODB_DELETION_PROTECTION", default=True)
DYNAMODB_TAGS = env.dict("DYNAMODB_TAGS", default={"application": "payments-backoffice"})
# SNS topic ARN the template's CloudWatch alarms notify (a template parameter's default).
DYNAMODB_ALARM_TOPIC_ARN = env.str("DYNAMODB_ALARM_TOPIC_ARN", default="")
# Consumed capacity units a second each table and index is budgeted for; the template's
# alarms fire above 80% of it. DYNAMODB_CAPACITY_BUDGETS overrides some, as READ:WRITE:
# "transactions=4000:2000,transactions.branch_day=800:0".
DYNAMODB_CAPACITY_BUDGET_READ = env.int("DYNAMODB_CAPACITY_BUDGET_READ", default=1000)
DYNAMODB_CAPACITY_BUDGET_WRITE = env.int("DYNAMODB_CAPACITY_BUDGET_WRITE", default=500)
DYNAMODB_CAPACITY_BUDGETS = _budgets("DYNAMODB_CAPACITY_BUDGETS")

# --- Celery -----------------------------------------------------------------------------

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # tasks are idempotent: a redelivered task changes nothing
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "Asia/Kolkata"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Two queues: money work (postings, mandates, reconciliation) on the default one;
# notifications and the outbox relay on the background one, which bin/run gives a worker of
# its own, so that a backlog of receipts or audit events never delays a posting. A worker
# started without -Q consumes both (config.celery.route_task decides where a task goes).
CELERY_TASK_DEFAULT_QUEUE = "celery"
BACKGROUND_QUEUE = "background"
CELERY_TASK_QUEUES = [
    Queue(name, routing_key=name) for name in (CELERY_TASK_DEFAULT_QUEUE, BACKGROUND_QUEUE)
]
CELERY_TASK_ROUTES = ["config.celery.route_task"]
# The static schedule; run exactly one beat. Daily jobs also guard themselves in Postgres.
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {"task": "ops.tasks.heartbeat_task", "schedule": 60.0},
    "mandates-daily": {
        "task": "mandates.tasks.mandates_daily_task",
        "schedule": crontab(minute=0, hour=env.int("MANDATES_PRESENTATION_HOUR", default=9)),
    },
    "payments-post-due": {
        "task": "payments.tasks.payments_post_due_task",
        "schedule": 5.0,
        "options": {"expires": 5.0},
    },
    # delivers the due messages of the outbox (core/outbox.py), every topic: audit events,
    # notification releases, NACH results and payment reversals to DynamoDB; stale runs are
    # dropped
    "outbox-relay": {
        "task": "core.tasks.outbox_relay_task",
        "schedule": 10.0,
        "options": {"expires": 10.0},
    },
    # deletes outbox messages delivered longer ago than OUTBOX_RETENTION_DAYS (pending ones
    # are kept); a rerun deletes nothing more
    "outbox-purge": {
        "task": "core.tasks.outbox_purge_task",
        "schedule": crontab(minute=30, hour=2),
    },
    # every active loan's dues (next due, arrears, DPD, bucket) as of the new IST date,
    # once per date (a second beat's run is skipped, a killed one resumes)
    "loans-dues-nightly": {
        "task": "loans.tasks.loans_dues_nightly_task",
        "schedule": crontab(minute=5, hour=0),
    },
    # DCRs: the intraday roll-up, the guarded daily build after each cut-off, late arrivals
    "reconciliation-tick": {
        "task": "reconciliation.tasks.reconciliation_tick_task",
        "schedule": 900.0,
        "options": {"expires": 900.0},
    },
    # the daily backup of both stores into BACKUP_DIRECTORY, then its pruning (backup/schedule.py)
    "backup-daily": {
        "task": "backup.tasks.backup_daily_task",
        "schedule": crontab(
            minute=env.int("BACKUP_MINUTE", default=30), hour=env.int("BACKUP_HOUR", default=1)
        ),
    },
    # sends scheduled and backed-off notifications; a run older than its interval is dropped
    "notifications-dispatch": {
        "task": "notifications.tasks.notifications_dispatch_task",
        "schedule": 30.0,
        "options": {"expires": 30.0},
    },
}

# --- Backups (backup/, docs/backup.md) ---------------------------------------------------

# Beat's daily backup (IST; a quiet hour keeps the DynamoDB window short) is written here as
# backup-<UTC time>/ and kept BACKUP_RETENTION_DAYS (the newest good one always).
BACKUP_DIRECTORY = Path(env.str("BACKUP_DIRECTORY", default=str(BASE_DIR / ".local" / "backups")))
BACKUP_HOUR = env.int("BACKUP_HOUR", default=1)
BACKUP_MINUTE = env.int("BACKUP_MINUTE", default=30)
BACKUP_RETENTION_DAYS = env.int("BACKUP_RETENTION_DAYS", default=7)
# Longer than a backup takes: a second worker skips the run while its lease lasts.
BACKUP_LEASE_SECONDS = env.int("BACKUP_LEASE_SECONDS", default=6 * 3600)

# --- Outbox (core/outbox.py) -----------------------------------------------------------

# Audit events are kept in DynamoDB this many days (their TTL); seven years by default.
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=2555)
# Delivered messages are deleted from Postgres after this many days (the daily
# outbox-purge); pending ones are never deleted.
OUTBOX_RETENTION_DAYS = env.int("OUTBOX_RETENTION_DAYS", default=30)
# A failed delivery is retried after 5 s, 10 s, 20 s... (at most 15 minutes), until it works.
OUTBOX_RETRY_BASE_SECONDS = env.int("OUTBOX_RETRY_BASE_SECONDS", default=5)
# Deliver right after the commit (in the process, or by a relay task it enqueues); off, only
# beat's relay delivers (some tests switch it off to see messages pending).
OUTBOX_DELIVER_ON_COMMIT = env.bool("OUTBOX_DELIVER_ON_COMMIT", default=True)

# --- Notifications (SMS, email, push; see notifications/) -------------------------------
# SMS and push provider: "development" sends nothing and records each message in Redis
# (list notifications:dev_outbox, shown in the admin); or the dotted path of an adapter class.
NOTIFICATIONS_SMS_PROVIDER = env.str("NOTIFICATIONS_SMS_PROVIDER", default="development")
NOTIFICATIONS_PUSH_PROVIDER = env.str("NOTIFICATIONS_PUSH_PROVIDER", default="development")
# A failed send is retried after 30 s, 60 s, 120 s... (capped at 1 h), then marked FAILED.
NOTIFICATIONS_MAX_ATTEMPTS = env.int("NOTIFICATIONS_MAX_ATTEMPTS", default=5)
NOTIFICATIONS_RETRY_BASE_SECONDS = env.int("NOTIFICATIONS_RETRY_BASE_SECONDS", default=30)
# How long notifications are kept (DynamoDB TTL); expired ones are never read or sent.
NOTIFICATIONS_RETENTION_DAYS = env.int("NOTIFICATIONS_RETENTION_DAYS", default=180)
# The ``status#channel`` index key is spread over this many partitions (as the posting
# queue's). Only ever raise it.
NOTIFICATIONS_QUEUE_SHARDS = env.int("NOTIFICATIONS_QUEUE_SHARDS", default=16)

# --- Payments ---------------------------------------------------------------------------

PAYMENTS_MAX_AMOUNT = env.str("PAYMENTS_MAX_AMOUNT", default="1000000.00")  # Decimal string
PAYMENTS_BACKDATE_DAYS = env.int("PAYMENTS_BACKDATE_DAYS", default=3)
PAYMENTS_IDEMPOTENCY_DAYS = env.int("PAYMENTS_IDEMPOTENCY_DAYS", default=7)
# The payments a process accepts within this many milliseconds are published to the posting
# workers as one task, off the request (0: each at once, in the request).
PAYMENTS_PUBLISH_WINDOW_MS = env.int("PAYMENTS_PUBLISH_WINDOW_MS", default=50)
# A posting that finds the ledger unavailable retries after 5 s, 10 s, 20 s... (capped at
# 15 minutes) and becomes a dead letter after the last attempt.
PAYMENTS_POSTING_BACKOFF_SECONDS = env.int("PAYMENTS_POSTING_BACKOFF_SECONDS", default=5)
PAYMENTS_POSTING_MAX_ATTEMPTS = env.int("PAYMENTS_POSTING_MAX_ATTEMPTS", default=10)
# A worker that dies holding queue items leaves them leased; another takes them over after
# this many seconds (longer than any single posting takes).
PAYMENTS_POSTING_LEASE_SECONDS = env.int("PAYMENTS_POSTING_LEASE_SECONDS", default=60)
# Finished (DONE) posting-queue items expire this many days after they finish (DynamoDB
# TTL); the transaction itself is kept. Dead letters never expire.
PAYMENTS_QUEUE_RETENTION_DAYS = env.int("PAYMENTS_QUEUE_RETENTION_DAYS", default=30)
# The posting queue's index key (``POSTING#READY``...) is spread over this many partitions
# (docs/capacity.md: one partition takes about 1,000 writes a second). Only ever raise it.
PAYMENTS_QUEUE_SHARDS = env.int("PAYMENTS_QUEUE_SHARDS", default=16)

# --- Mandates ---------------------------------------------------------------------------

# Adapter class per banking partner code; "default" for partners not listed.
MANDATES_PARTNER_ADAPTERS = {"default": "mandates.sandbox.SandboxPartner"}
MANDATES_SANDBOX_REPORT_DELAY_SECONDS = env.int("MANDATES_SANDBOX_REPORT_DELAY_SECONDS", default=5)
# The payer is notified this many days before each presentation (pre-debit notice).
MANDATES_PRE_DEBIT_NOTICE_DAYS = env.int("MANDATES_PRE_DEBIT_NOTICE_DAYS", default=1)
# The hour (IST) of the daily presentation run.
MANDATES_PRESENTATION_HOUR = env.int("MANDATES_PRESENTATION_HOUR", default=9)
# A presentation run that died is resumed by the next run after this many seconds.
MANDATES_PRESENTATION_LEASE_SECONDS = env.int("MANDATES_PRESENTATION_LEASE_SECONDS", default=1800)

# --- Loans ------------------------------------------------------------------------------

# The nightly dues refresh (loans.services.loans_dues_daily) checkpoints every range of
# loans; a run silent this many seconds (its worker died) is taken over and resumed.
LOANS_DUES_LEASE_SECONDS = env.int("LOANS_DUES_LEASE_SECONDS", default=600)

# --- Reconciliation ---------------------------------------------------------------------

# A daily DCR job silent this many seconds (its worker died) is taken over by the next tick.
RECONCILIATION_JOB_LEASE_SECONDS = env.int("RECONCILIATION_JOB_LEASE_SECONDS", default=1800)

# --- Stream processor (streams/; docs/streams.md) ----------------------------------------
# A shard's lease lasts this long without a renewal (each read renews it); then another
# processor may take it.
STREAMS_LEASE_SECONDS = env.int("STREAMS_LEASE_SECONDS", default=30)
STREAMS_POLL_SECONDS = env.float("STREAMS_POLL_SECONDS", default=1.0)  # idle wait at the tip
STREAMS_BATCH_SIZE = env.int("STREAMS_BATCH_SIZE", default=1000)  # records a read (at most 1000)
STREAMS_SYNC_SECONDS = env.int("STREAMS_SYNC_SECONDS", default=60)  # list the shards again
# Where a shard without a checkpoint starts: TRIM_HORIZON (the oldest record kept) or LATEST.
STREAMS_INITIAL_POSITION = env.str("STREAMS_INITIAL_POSITION", default="TRIM_HORIZON")
# Tests only (0 otherwise): a wait between applying a batch and its checkpoint, in which the
# tests kill a processor mid-batch (streams/tests/test_processes.py).
STREAMS_CHECKPOINT_DELAY_SECONDS = env.float("STREAMS_CHECKPOINT_DELAY_SECONDS", default=0.0)

# --- Auth, sessions, login lock-out -----------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_ENGINE = "sessions_ddb.backend"
# Messages live in the session, on the server: one of them shows a new API key once, and
# the default cookie storage would carry it in a readable (signed, not encrypted) cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
# Sessions read from DynamoDB are kept in Redis this many seconds at most (never past their
# expiry); 0 reads DynamoDB every time.
SESSIONS_DDB_CACHE_SECONDS = env.int("SESSIONS_DDB_CACHE_SECONDS", default=300)
# A username from one address is locked out after AXES_FAILURE_LIMIT failures; an address
# after LOGIN_ADDRESS_FAILURE_LIMIT failures whatever the usernames (password spraying;
# higher, as an office's staff share its address). Both for AXES_COOLOFF_HOURS.
AXES_HANDLER = "accounts.lockout.LoginLockoutHandler"
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=50)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.5)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
LOGIN_URL = "admin:login"
# Where a login goes when its next= is missing or off-site (Django's default is a 404).
LOGIN_REDIRECT_URL = "admin:index"

# --- Security (production unless DJANGO_DEBUG; each switch overridable) -----------------

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Behind a proxy that sets X-Forwarded-For (and drops what the client sent): the client IP
# of logs, audit events and the /metrics allow-list is its first address, not the proxy's.
TRUST_X_FORWARDED_FOR = env.bool("TRUST_X_FORWARDED_FOR", default=False)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
# No page script reads the CSRF cookie: forms carry the token, Swagger UI gets it from its
# own script (drf-spectacular's split view).
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy (django-csp) on every response. Scripts only from this site: no
# page has an inline script (the dashboard's and Swagger UI's code are static files or a
# same-origin URL), so an injected <script> or on* attribute never runs. Styles allow
# 'unsafe-inline': the admin, Select2 and Swagger UI write style attributes and <style>
# blocks, and a style cannot run code. img-src data: is for the icons in Swagger UI's CSS.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Internationalisation ---------------------------------------------------------------

LANGUAGE_CODE = "en-in"
TIME_ZONE = "Asia/Kolkata"
# The back-office speaks English only; without the translation machinery an admin page
# costs about 3 ms less CPU (bench/loan_changelist.py).
USE_I18N = False
USE_TZ = True
# Dates and times as every screen shows them (07 Dec 2026, 14:05 IST): config/formats.
FORMAT_MODULE_PATH = ["config.formats"]

# --- Static files -----------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").exists() else []
# Chart.js for the reconciliation dashboard, from npm (package.json); never committed.
STATICFILES_DIRS.append(("vendor/chartjs", BASE_DIR / "node_modules" / "chart.js" / "dist"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / ".local" / "media")

# --- REST framework ---------------------------------------------------------------------

# The API (see api/): key or session authentication, HasScope permissions on each view,
# one JSON error format, OpenAPI at /api/schema/ with Swagger UI at /api/docs/.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.ApiKeyAuthentication",  # first: a missing credential is a 401
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.limits.JSONParser"],  # with the request limits
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "api.schema.ApiAutoSchema",
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Payments back-office API",
    "DESCRIPTION": (
        "For integrations (an API key with scopes, limited to its branches) and staff "
        "(their admin session and permissions). Errors are always "
        '`{"error": {"code", "message", "fields"?}}` with a stable `code`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"LoanStatusEnum": "loans.models.LoanAccount.Status"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.text_without_nul",
    ],
    # Swagger UI and ReDoc from drf-spectacular-sidecar's static files, never a CDN
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Email and logging ------------------------------------------------------------------

EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="no-reply@backoffice.example")

# One JSON object a line (ops/logging.py), with the request id, the actor and the Celery task;
# secrets masked. LOG_FORMAT=text gives plain lines for humans. Workers and beat use this too.
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "ops.logging.ContextFilter"}},
    "formatters": {
        "json": {"()": "ops.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own handlers (plain text, e-mail to admins) give way to the one above
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": [], "propagate": True},
        "botocore": {"level": "WARNING"},
        "pynamodb": {"level": "WARNING"},
        # the pool logs every failed attempt; the final error is raised and reported once
        "psycopg.pool": {"level": "ERROR"},
    },
}

# --- Metrics (Prometheus, /metrics; see ops/metrics.py) ---------------------------------
# /metrics answers only requests from these networks (CIDR, comma-separated; the client IP
# as ops.middleware.client_ip sees it) or with "Authorization: Bearer <METRICS_TOKEN>";
# with neither set it answers 403 to everyone. Development allows this machine.
# PROMETHEUS_MULTIPROC_DIR (read by prometheus_client itself) adds up the figures of every
# process of the host; bin/run sets it.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list(
    "METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"] if DEBUG else []
)
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network)
    except ValueError as exc:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS is malformed: {exc}") from None
