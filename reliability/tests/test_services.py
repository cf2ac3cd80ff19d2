"""The fault suite's guard: it stops only services of its own, never the shared ones."""

from urllib.parse import urlparse

import pytest
from django.conf import settings

from reliability.services import FaultInstanceError, FaultServices


def _ports() -> dict[str, str]:
    return {
        "LOCAL_PG_PORT": str(settings.DATABASES["default"]["PORT"]),
        "LOCAL_REDIS_PORT": str(urlparse(settings.REDIS_URL).port),
        "LOCAL_DYNAMODB_PORT": str(urlparse(settings.DYNAMODB_ENDPOINT).port),
    }


def test_services_of_its_own_are_accepted_and_bin_services_runs_without_the_urls():
    environ = {
        "LOCAL_SERVICES_DIR": ".local/faults",
        "DATABASE_URL": "postgres://elsewhere/db",
        "PATH": "/usr/bin",
        **_ports(),
    }
    services = FaultServices(environ)
    assert services.directory == ".local/faults"
    assert "DATABASE_URL" not in services.environ
    assert services.environ["LOCAL_PG_PORT"] == environ["LOCAL_PG_PORT"]


@pytest.mark.parametrize("directory", ["", ".local", "./.local/"])
def test_the_shared_services_are_refused(directory):
    with pytest.raises(FaultInstanceError, match="TEST_SUITE=faults bin/test"):
        FaultServices({"LOCAL_SERVICES_DIR": directory, **_ports()})


def test_a_port_other_than_the_applications_is_refused():
    ports = {**_ports(), "LOCAL_REDIS_PORT": "1"}
    refused = r"redis: the application uses \S+ but LOCAL_REDIS_PORT=1"
    with pytest.raises(FaultInstanceError, match=refused):
        FaultServices({"LOCAL_SERVICES_DIR": ".local/faults", **ports})
