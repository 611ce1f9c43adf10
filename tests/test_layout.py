"""The package's layout: dependencies point one way, core -> nothing, areas -> core.

Every import of every module under gan_utils/ is read from its syntax tree: ``import``
and ``from ... import`` at module and at function level (relative ones resolved), and
``importlib.import_module`` / ``__import__`` calls. An import from one area (toy, images,
hessian) into another is allowed only when it is listed in ``ALLOWED`` with its reason;
core imports no area at all. Dynamic imports (a module name that is not a literal) are
allowed only in the functions listed in ``DYNAMIC``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gan_utils"
AREAS = ("core", "toy", "images", "hessian")

# (importing module, imported module): why the area boundary is crossed there.
ALLOWED: dict[tuple[str, str], str] = {
    (
        "gan_utils.images.recipe",
        "gan_utils.hessian.nu_gan",
    ): "the image-GAN recipe trains lesson 06's NU-GAN runs: NuGANHook is its grad_hook",
    (
        "gan_utils.images.references",
        "gan_utils.hessian.nu_gan",
    ): "the registry defines lesson 06's NU-GAN reference runs by their NuGANConfig",
    (
        "gan_utils.images.pretrain",
        "gan_utils.hessian.spectra",
    ): "lesson 06's dense reference runs log the Hessian spectra the lesson shows",
}
# functions that import a module named at run time, and why
DYNAMIC: dict[tuple[str, str], str] = {
    (
        "gan_utils.core.checkpoints",
        "resolve_builder",
    ): "rebuilds a saved generator from the 'gan_utils.<module>:<function>' name stored with it",
    (
        "gan_utils.core.checkpoints",
        "resolve_config_class",
    ): "rebuilds a saved run's config from the 'gan_utils.<module>:<Class>' name stored with it",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def area_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "gan_utils" and parts[1] in AREAS else None


def resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


class ImportCollector(ast.NodeVisitor):
    """(imported module, enclosing function or None, line) for every import in a module."""

    def __init__(self, module: str, is_package: bool):
        self.module, self.is_package = module, is_package
        self.function: list[str] = []
        self.imports: list[tuple[str, str | None, int]] = []
        self.dynamic: list[tuple[str | None, int]] = []

    def _here(self) -> str | None:
        return self.function[0] if self.function else None

    def visit_FunctionDef(self, node):  # noqa: N802 - ast's visitor names
        self.function.append(node.name)
        self.generic_visit(node)
        self.function.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815

    def visit_Import(self, node):  # noqa: N802
        for alias in node.names:
            self.imports.append((alias.name, self._here(), node.lineno))

    def visit_ImportFrom(self, node):  # noqa: N802
        if node.level:
            base = resolve_relative(self.module, self.is_package, node.level, node.module)
        else:
            base = node.module or ""
        for alias in node.names:
            # `from gan_utils.toy import runs` imports the module gan_utils.toy.runs
            candidate = f"{base}.{alias.name}"
            is_module = (PACKAGE.parent / Path(*candidate.split("."))).with_suffix(".py").is_file()
            self.imports.append((candidate if is_module else base, self._here(), node.lineno))

    def visit_Call(self, node):  # noqa: N802
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in ("import_module", "__import__"):
            argument = node.args[0] if node.args else None
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                self.imports.append((argument.value, self._here(), node.lineno))
            else:
                self.dynamic.append((self._here(), node.lineno))
        self.generic_visit(node)


def collect() -> dict[str, ImportCollector]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        collector = ImportCollector(module, path.name == "__init__.py")
        collector.visit(ast.parse(path.read_text(), filename=str(path)))
        found[module] = collector
    return found


MODULES = collect()


def test_every_module_lives_in_an_area():
    loose = [m for m in MODULES if m != "gan_utils" and area_of(m) is None]
    assert not loose, f"modules outside core/toy/images/hessian: {loose}"


def test_the_collector_sees_function_level_relative_and_importlib_imports():
    source = (
        "import importlib\n"
        "from ..toy import runs\n"
        "def f():\n"
        "    from ..hessian.nu_gan import NuGANHook\n"
        "    importlib.import_module('gan_utils.toy.coverage')\n"
        "    importlib.import_module(name)\n"
    )
    collector = ImportCollector("gan_utils.images.fake", is_package=False)
    collector.visit(ast.parse(source))
    targets = {(m, f) for m, f, _ in collector.imports}
    assert ("gan_utils.toy.runs", None) in targets
    assert ("gan_utils.hessian.nu_gan", "f") in targets
    assert ("gan_utils.toy.coverage", "f") in targets
    assert collector.dynamic == [("f", 6)]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_cross_areas_only_where_allowed(module):
    source_area = area_of(module)
    wrong = []
    for target, function, line in MODULES[module].imports:
        target_area = area_of(target)
        if not target.startswith("gan_utils") or target_area in (None, source_area):
            continue
        if source_area == "core" or module == "gan_utils":
            wrong.append(f"line {line}: {target} (core and the package root import no area)")
        elif target_area != "core" and (module, target) not in ALLOWED:
            wrong.append(f"line {line}: {target}" + (f" in {function}()" if function else ""))
    assert not wrong, f"{module} crosses an area boundary not in ALLOWED: {wrong}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_dynamic_imports_only_in_the_listed_functions(module):
    unexpected = [
        f"line {line} in {function}()"
        for function, line in MODULES[module].dynamic
        if (module, function) not in DYNAMIC
    ]
    assert not unexpected, f"{module} imports a module named at run time: {unexpected}"


def test_every_allowed_crossing_is_still_used_and_has_a_reason():
    used = {(m, t) for m, c in MODULES.items() for t, _, _ in c.imports}
    for pair, reason in ALLOWED.items():
        assert pair in used, f"{pair} is allowed but no longer imported: drop it from ALLOWED"
        assert len(reason) > 20, f"{pair} needs its reason"
    dynamic = {(m, f) for m, c in MODULES.items() for f, _ in c.dynamic}
    for pair in DYNAMIC:
        assert pair in dynamic, f"{pair} no longer imports dynamically: drop it from DYNAMIC"
