"""The private-names contract (config/importlinter_contracts.py) on packages written for the
test: what it refuses between packages, what it leaves alone inside one."""

import importlib
import re
import textwrap
import uuid

import grimp
import pytest

from config.importlinter_contracts import PrivateNamesContract, PrivateUse


@pytest.fixture
def packages(tmp_path, monkeypatch):
    """Write packages (``{"alpha/mod.py": source}``) under names unique to the test, so that
    no module of an earlier test is found; returns ``{"alpha": "alpha_<unique>"}``."""
    suffix = uuid.uuid4().hex[:8]

    def write(files: dict[str, str]) -> dict[str, str]:
        names = {path.partition("/")[0]: f"{path.partition('/')[0]}_{suffix}" for path in files}
        for path, source in files.items():
            package, _, rest = path.partition("/")
            target = tmp_path / names[package] / rest
            target.parent.mkdir(parents=True, exist_ok=True)
            for folder in (tmp_path / names[package], target.parent):
                (folder / "__init__.py").touch()
            source = textwrap.dedent(source)
            for plain, unique in names.items():
                source = re.sub(rf"\b{plain}\b", unique, source)
            target.write_text(source)
        monkeypatch.syspath_prepend(str(tmp_path))
        importlib.invalidate_caches()
        return names

    return write


def _check(names: dict[str, str], **options) -> list[PrivateUse]:
    """The contract's findings, with the packages' plain names."""
    graph = grimp.build_graph(*names.values(), cache_dir=None)
    contract = PrivateNamesContract(
        "private names", {}, {"packages": list(names.values()), **options}
    )
    result = contract.check(graph, verbose=False)
    assert result.kept is (not result.metadata["uses"])
    plain = {unique: name for name, unique in names.items()}

    def unsuffixed(dotted: str) -> str:
        head, _, rest = dotted.partition(".")
        return f"{plain[head]}.{rest}" if rest else plain[head]

    return [
        PrivateUse(unsuffixed(use.importer), use.line, unsuffixed(use.used))
        for use in result.metadata["uses"]
    ]


def test_private_names_of_another_package_are_refused_however_they_are_reached(packages):
    names = packages(
        {
            "alpha/_hidden.py": "X = 1\n",
            "alpha/sub/__init__.py": "def _secret(): pass\ndef public(): pass\n",
            "alpha/mod.py": "def _helper(): pass\n",
            "beta/user.py": """\
                from alpha.sub import _secret, public
                from alpha import mod
                import alpha._hidden
                import alpha.sub as sub
                from alpha._hidden import X


                def uses():
                    mod._helper()
                    sub._secret()
                    sub.public().value._own_business
                    mod.__name__
                """,
        }
    )
    uses = {(use.importer, use.line, use.used) for use in _check(names)}
    assert {(line, used) for importer, line, used in uses} == {
        (1, "alpha.sub._secret"),
        (3, "alpha._hidden"),
        (5, "alpha._hidden"),
        (9, "alpha.mod._helper"),
        (10, "alpha.sub._secret"),
    }
    assert {importer for importer, _, _ in uses} == {"beta.user"}


def test_inside_one_package_private_names_are_free(packages):
    names = packages(
        {
            "alpha/_common.py": "def _shared(): pass\n",
            "alpha/services/__init__.py": "from .._common import _shared\n",
            "alpha/services/ingest.py": "from .. import _common\n_common._shared()\n",
            "beta/mod.py": "from alpha.services import ingest\n",
        }
    )
    assert _check(names) == []


def test_ignored_modules_are_not_checked(packages):
    names = packages(
        {
            "alpha/mod.py": "def _helper(): pass\n",
            "beta/tests/test_mod.py": "from alpha.mod import _helper\n",
        }
    )
    assert [use.used for use in _check(names)] == ["alpha.mod._helper"]
    assert _check(names, ignore_modules=[f"{names['beta']}.tests.**"]) == []
