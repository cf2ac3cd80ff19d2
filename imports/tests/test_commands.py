"""import_data on the command line, and the templates: the header of each kind (the
command's --template and the admin's download) and docs/imports.md list the importer's
columns, in its order."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from accounts.models import Branch
from imports.importers import IMPORTERS
from imports.models import ImportRun

from .helpers import BRANCH, csv_file

pytestmark = pytest.mark.django_db
DOCS = Path(settings.BASE_DIR) / "docs" / "imports.md"


def test_import_data_writes_the_result_file_and_says_the_counts(tmp_path):
    path = tmp_path / "branches.csv"
    path.write_bytes(csv_file("branches", [BRANCH, {**BRANCH, "code": "=1+1"}]))
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 row\\(s\\) refused") as refused:
        call_command("import_data", "branches", str(path), stdout=out, verbosity=0)
    assert refused.value.returncode == 2
    assert "branches imported: total 2, created 1, updated 0, unchanged 0, refused 1" in (
        out.getvalue()
    )
    lines = list(csv.reader((tmp_path / "branches.csv.result.csv").open()))
    assert lines[0] == ["line", "status", "key", "field", "reason"]
    assert lines[1] == ["2", "CREATED", "PUN01", "", ""]
    assert lines[2][:4] == ["3", "REFUSED", "'=1+1", "code"]  # never a formula
    assert Branch.objects.get().code == "PUN01"


def test_import_data_dry_run_writes_nothing(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes(csv_file("branches", [BRANCH]))
    out = io.StringIO()
    call_command(
        "import_data", "branches", str(path), "--dry-run", "--result", str(tmp_path / "r.csv"),
        stdout=out, verbosity=0,
    )  # fmt: skip
    assert "dry run, nothing written: total 1, created 1" in out.getvalue()
    assert not Branch.objects.exists()
    assert (tmp_path / "r.csv").read_text().splitlines()[1] == "2,CREATED,PUN01,,"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["branches", "nowhere.csv"], "nowhere.csv: no such file"),
        (["branches"], "give the FILE"),
        (["branches", "__FILE__", "--as", "nobody"], "no active user 'nobody'"),
        (["mandates", "__FILE__"], "needs the user it is made by"),
    ],
)
def test_import_data_refuses_in_one_line(tmp_path, args, message):
    path = tmp_path / "b.csv"
    path.write_bytes(csv_file("branches", [BRANCH]))
    args = [str(path) if arg == "__FILE__" else arg for arg in args]
    with pytest.raises(CommandError, match=message):
        call_command("import_data", *args, verbosity=0)
    assert not ImportRun.objects.exists()


@pytest.mark.parametrize("kind", list(IMPORTERS))
def test_the_template_is_the_importers_columns(kind):
    out = io.StringIO()
    call_command("import_data", kind, "--template", stdout=out)
    assert next(csv.reader(io.StringIO(out.getvalue()))) == IMPORTERS[kind].header()


def _documented(section: str) -> list[str]:
    text = DOCS.read_text()
    start = text.index(f"(`{section}`)")
    table = text[start:].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.MULTILINE)


@pytest.mark.parametrize("kind", list(IMPORTERS))
def test_docs_list_every_column_of_each_kind_in_order(kind):
    assert _documented(kind) == IMPORTERS[kind].header()


def test_docs_list_the_schedule_file_columns():
    assert _documented("loans --schedule") == IMPORTERS["loans"].schedule_header()


@pytest.mark.parametrize("kind", list(IMPORTERS))
def test_every_column_has_an_example_and_a_help_text(kind):
    importer = IMPORTERS[kind]
    assert set(importer.examples) == set(importer.header())
    assert all(field.help_text for field in importer.form_class.base_fields.values())
