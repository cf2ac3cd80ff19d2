"""Import-linter contracts of our own (configured in .importlinter; only lint-imports loads
this module, the application never does).

``PrivateNamesContract``: a package never uses another package's private names. A name is
private when it starts with one underscore (``_store_call``, ``_common``; dunders such as
``__version__`` are not). It is broken by a module of package A that

- imports a private name from package B: ``from payments.services import _store_call``;
- imports from or through a private module of B: ``from payments.services._common import
  TxnStatus``, ``import payments.services._common``;
- reads a private name off a module of B it imported: ``from payments import services``
  then ``services._store_call(...)``.

Inside one package private names are free: privacy is between packages, and a private name
another package needs is made public (or given a public function) in its own package.
Import-linter's own contracts look at which modules import which; this one reads the names,
so it parses each checked module's source with ``ast``.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck
from importlinter.domain.helpers import module_expressions_to_modules


@dataclass(frozen=True, order=True)
class PrivateUse:
    importer: str
    line: int
    used: str  # the dotted private name, e.g. payments.services._store_call


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_part(dotted: str) -> bool:
    """Whether any part after the package itself is private (``payments.services._common``)."""
    return any(is_private(part) for part in dotted.split(".")[1:])


def package_of(module: str) -> str:
    return module.split(".", 1)[0]


class PrivateNamesContract(Contract):
    """Options:

    - ``packages``: the packages whose modules are checked and whose private names are
      protected from each other.
    - ``ignore_modules``: module expressions (``**.tests.**``) whose own code is not checked
      (their private names stay protected from the others).
    """

    type_name = "private_names"

    packages = fields.ListField(subfield=fields.ModuleField())
    ignore_modules = fields.SetField(subfield=fields.ModuleExpressionField(), required=False)

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        packages = {module.name for module in self.packages}
        ignored = {
            module.name
            for module in module_expressions_to_modules(graph, self.ignore_modules or set())
        }
        uses: list[PrivateUse] = []
        for module in sorted(graph.modules):
            if package_of(module) not in packages or module in ignored:
                continue
            path = _source_path(module)
            if path is None:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            uses += _ModuleChecker(module, graph, packages, path.name == "__init__.py").run(tree)
        return ContractCheck(kept=not uses, metadata={"uses": sorted(set(uses))})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for use in check.metadata["uses"]:
            output.print_error(
                f"{use.importer} uses the private name {use.used} (line {use.line})", bold=False
            )
        output.new_line()
        output.print(
            "Make the name public in its own package (or give it a public function there) "
            "instead of reaching into another package's internals."
        )


def _source_path(module: str) -> Path | None:
    spec = importlib.util.find_spec(package_of(module))
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations)))
    rest = module.split(".")[1:]
    candidates = [base.joinpath(*rest, "__init__.py")]
    if rest:
        candidates.append(base.joinpath(*rest).with_suffix(".py"))
    return next((path for path in candidates if path.is_file()), None)


class _ModuleChecker(ast.NodeVisitor):
    """Finds one module's uses of other packages' private names."""

    def __init__(self, module: str, graph: ImportGraph, packages: set[str], is_package: bool):
        self.module = module
        self.graph = graph
        self.packages = packages
        self.own = package_of(module)
        # the package that relative imports start from
        self.here = module if is_package else module.rpartition(".")[0]
        self.bound: dict[str, str] = {}  # local name -> another package's module it names
        self.uses: list[PrivateUse] = []

    def run(self, tree: ast.AST) -> list[PrivateUse]:
        self.visit(tree)
        return self.uses

    def _foreign(self, dotted: str) -> bool:
        package = package_of(dotted)
        return package in self.packages and package != self.own

    def _use(self, node: ast.AST, dotted: str) -> None:
        self.uses.append(PrivateUse(self.module, getattr(node, "lineno", 0), dotted))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if not self._foreign(alias.name):
                continue
            if private_part(alias.name):
                self._use(node, alias.name)
            if alias.asname:
                self.bound[alias.asname] = alias.name
            else:  # "import a.b.c" binds "a"
                self.bound[package_of(alias.name)] = package_of(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            parts = self.here.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1])
            source = f"{base}.{node.module}" if node.module else base
        else:
            source = node.module or ""
        if not self._foreign(source):
            return
        if private_part(source):
            self._use(node, source)
            return
        for alias in node.names:
            if alias.name == "*":
                continue
            dotted = f"{source}.{alias.name}"
            if is_private(alias.name):
                self._use(node, dotted)
            elif dotted in self.graph.modules:
                self.bound[alias.asname or alias.name] = dotted

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain: list[str] = []
        value: ast.expr = node
        while isinstance(value, ast.Attribute):
            chain.append(value.attr)
            value = value.value
        if isinstance(value, ast.Name) and value.id in self.bound:
            current = self.bound[value.id]
            for attr in reversed(chain):
                if is_private(attr):
                    self._use(node, f"{current}.{attr}")
                    return  # reported once, at the outermost attribute
                current = f"{current}.{attr}"
                if current not in self.graph.modules:
                    break  # past the module: an object's attributes are its own business
            # the outer attribute covered the whole chain: skip its inner ones
            return
        self.generic_visit(node)
