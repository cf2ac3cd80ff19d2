import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# The web process only: a statement of a request is cancelled after this long (settings'
# DATABASE_STATEMENT_TIMEOUT_MS; Celery, beat and commands keep none unless it is set).
os.environ.setdefault(
    "DATABASE_STATEMENT_TIMEOUT_MS", os.environ.get("WEB_STATEMENT_TIMEOUT_MS", "5000")
)
application = get_wsgi_application()
