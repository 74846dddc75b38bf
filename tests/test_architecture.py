"""The house rules that keep the layers apart, checked on the source itself."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from aggregator.thirdparty import PINS, PRIVATE_NAMES, Pin, PrivateName

REPO = Path(__file__).resolve().parents[1]

# Allowed imports: web -> index -> aggregator, and web -> aggregator (STYLE.md).
FORBIDDEN = {
    "aggregator": {"index", "web"},
    "index": {"web"},
}


def imported_packages(path: Path) -> set[str]:
    """Return the top-level names a module imports (absolute imports only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_import_only_downwards(package: str) -> None:
    offenders = []
    for path in sorted((REPO / package).rglob("*.py")):
        bad = imported_packages(path) & FORBIDDEN[package]
        if bad:
            offenders.append(f"{path.relative_to(REPO)} imports {sorted(bad)}")
    assert offenders == []


def test_import_checker_sees_a_violation(tmp_path: Path) -> None:
    # The checker itself must be able to fail.
    module = tmp_path / "m.py"
    module.write_text("import web.app\nfrom index.search import search\n")
    assert imported_packages(module) == {"web", "index"}


def test_exactly_one_whoosh_distribution_installed() -> None:
    # Whoosh forks share the `whoosh` module name; two installed side by side overwrite each other.
    whooshes = sorted(
        {
            dist.metadata["Name"].lower()
            for dist in metadata.distributions()
            if "whoosh" in (dist.metadata["Name"] or "").lower()
            and "whoosh" in (dist.read_text("top_level.txt") or "whoosh").split()
        }
    )
    assert whooshes == ["whoosh-reloaded"]
    assert metadata.version("whoosh-reloaded") == "2.7.5"


# --- The module import graph --------------------------------------------------------------------
#
# Every import counts: at module level, inside functions (the CLI's lazy imports) and under
# `if TYPE_CHECKING:`. A cycle is a pair of modules that each need the other to be read, whether or
# not Python happens to tolerate it at run time.

PACKAGES = ("aggregator", "index", "web")

#: Cycles still present, each to be removed by the work named beside it; the set may only shrink.
KNOWN_CYCLES: dict[frozenset[str], str] = {}


def project_modules() -> dict[str, Path]:
    """Return every module of the project packages by dotted name (packages by their own name)."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """Return the project modules that module ``name`` imports anywhere in its body (the nearest existing one)."""

    def nearest(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from pkg import sub` imports the submodule when there is one, else a name of pkg.
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module for alias in node.names
            ]
        else:
            continue
        found.update(target for target in map(nearest, targets) if target)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    """Return the project's module import graph: module -> the project modules it imports."""
    modules = project_modules()
    known = set(modules)
    return {name: imported_modules(name, path, known) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Return the strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Return every project module ``start`` imports, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_no_import_cycles_among_modules() -> None:
    found = cycles(import_graph())
    unexpected = [sorted(cycle) for cycle in found if cycle not in KNOWN_CYCLES]
    assert unexpected == []


def test_web_and_index_need_no_cycle_exceptions() -> None:
    # The web app, its blueprints, the CLI modules and the index are cycle-free with no exception allowed.
    allowed = sorted(module for cycle in KNOWN_CYCLES for module in cycle if module.startswith(("web", "index")))
    assert allowed == []


def test_the_cycle_finder_finds_cycles(tmp_path: Path) -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "one.py").write_text("def f():\n    from .two import g\n")
    (package / "two.py").write_text("from pkg import one\n")
    known = {"pkg", "pkg.one", "pkg.two"}
    assert imported_modules("pkg.one", package / "one.py", known) == {"pkg.two"}
    assert imported_modules("pkg.two", package / "two.py", known) == {"pkg.one"}


# --- One check pipeline ----------------------------------------------------------------------------

#: Calls that read a feed's body; outside the check pipeline (aggregator/pipeline.py) only these may make them.
FEED_READING = frozenset({"parse_feed", "normalize_changed", "normalize_feed"})
READERS_OUTSIDE_THE_PIPELINE = {
    # normalize_feed is normalize_changed without the item digests.
    "aggregator.normalize.feed": {"normalize_changed"},
    # `feeds add` only asks whether a URL is a feed or a page that links to feeds; it normalizes nothing.
    "aggregator.discover": {"parse_feed"},
}


def called_names(path: Path) -> set[str]:
    """Return the names a module calls (``f(...)`` and ``x.f(...)`` both count as ``f``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                names.add(node.func.id)
            elif isinstance(node.func, ast.Attribute):
                names.add(node.func.attr)
    return names


def names_imported_from(name: str, path: Path, source: str) -> set[str]:
    """Return the names module ``name`` imports from module ``source`` (absolute or relative imports)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([module] if module else []))
            if module == source:
                found.update(alias.name for alias in node.names)
    return found


def test_only_the_check_pipeline_reads_feed_bodies() -> None:
    readers = {
        name: called
        for name, path in project_modules().items()
        if (called := called_names(path) & FEED_READING) and name != "aggregator.pipeline"
    }
    assert readers == READERS_OUTSIDE_THE_PIPELINE
    assert {"parse_feed", "normalize_changed"} <= called_names(project_modules()["aggregator.pipeline"])


def test_the_pipeline_checks_see_a_side_path(tmp_path: Path) -> None:
    # What `inspect` used to do: parse and normalize by itself, beside the pipeline.
    module = tmp_path / "cli.py"
    module.write_text(
        "from aggregator.normalize import normalize_feed\nfrom .pipeline import fetch\n"
        "def inspect(x):\n    return normalize_feed(parse.parse_feed(x), None)\n"
    )
    assert called_names(module) & FEED_READING == {"normalize_feed", "parse_feed"}
    assert names_imported_from("web.cli", module, "aggregator.pipeline") == set()
    assert names_imported_from("aggregator.cli", module, "aggregator.pipeline") == {"fetch"}


def test_the_poller_and_inspect_run_the_same_stages() -> None:
    modules = project_modules()
    # Wherever the CLI lives, the module that defines the `inspect` command.
    (inspect_module,) = [
        name
        for name, path in modules.items()
        if name.startswith("web")
        and any(
            isinstance(node, ast.FunctionDef) and node.name == "inspect"
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        )
    ]
    first_stages = {"start", "fetch", "read"}
    assert first_stages <= names_imported_from(inspect_module, modules[inspect_module], "aggregator.pipeline")
    poller = names_imported_from("aggregator.poller", modules["aggregator.poller"], "aggregator.pipeline")
    assert first_stages | {"add_article_pages", "record"} <= poller


#: The modules that must stay pure (no network, database or index), and what counts as I/O.
PURE = ("aggregator.normalize", "aggregator.policy", "aggregator.parse")
IO_MODULES = frozenset(
    {
        "aggregator.fetch",
        "aggregator.deadline",
        "aggregator.discover",
        "aggregator.store",
        "aggregator.store_entries",
        "aggregator.tables",
        "aggregator.poller",
        "aggregator.pipeline",
        "aggregator.articlepages",
        "aggregator.configfeeds",
        "aggregator.leases",
        "aggregator.workers",
        "aggregator.scheduler",
    }
)
IO_LIBRARIES = ("httpx", "httpcore", "sqlalchemy", "psycopg", "whoosh", "flask", "waitress", "apscheduler", "socket")
IO_LIBRARIES_DOTTED = ("urllib.request", "http.client")


def third_party_imports(path: Path) -> set[str]:
    """Return the dotted names of the absolute imports of a module."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("pure", PURE)
def test_pure_modules_import_no_io(pure: str) -> None:
    graph = import_graph()
    modules = project_modules()
    # A package is pure with all its modules, imported by its __init__ or not.
    members = {name for name in modules if name == pure or name.startswith(pure + ".")}
    closure = set(members)
    for member in members:
        closure |= reachable(graph, member)
    assert sorted(closure & IO_MODULES) == []
    libraries = {
        f"{name} imports {imported}"
        for name in closure
        for imported in third_party_imports(modules[name])
        if imported.split(".")[0] in IO_LIBRARIES or imported.startswith(IO_LIBRARIES_DOTTED)
    }
    assert sorted(libraries) == []


# --- feedparser stays as shipped ------------------------------------------------------------------

# Run in a fresh interpreter: the state of feedparser's modules and classes, and what feedparser.parse
# returns, before and after importing every project module and parsing with ours.
FRESH_INTERPRETER = r"""
import importlib, io, json, pkgutil, sys, warnings
warnings.simplefilter("ignore")
import feedparser

for info in pkgutil.walk_packages(feedparser.__path__, "feedparser."):
    importlib.import_module(info.name)

BODY = b'''<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>T &#8212; \x93q\x94</title>
<link>/home</link><item><title>One</title><link>/a/1</link><guid>g1</guid>
<description>&lt;p onclick="x()"&gt;Hi &lt;a href="/rel"&gt;there&lt;/a&gt;&lt;script&gt;bad()&lt;/script&gt;&lt;/p&gt;</description>
<media:content url="/i.jpg"><media:description>Caption</media:description></media:content>
</item></channel></rss>'''


def result():
    parsed = feedparser.parse(io.BytesIO(BODY), response_headers={"content-location": "https://example.test/f.xml"})
    return json.dumps(parsed, sort_keys=True, default=repr)


def describe(value):
    if isinstance(value, (list, dict, set, frozenset, tuple)):
        return [id(value), repr(value)]
    return [id(value)]


def snapshot():
    state = {}
    for name, module in sorted(sys.modules.items()):
        if name == "feedparser" or name.startswith("feedparser."):
            for key, value in list(vars(module).items()):
                state[f"{name}:{key}"] = describe(value)
                if isinstance(value, type) and value.__module__ == name:
                    for attribute, item in vars(value).items():
                        state[f"{name}:{key}.{attribute}"] = describe(item)
    return state


first = result()  # also fills the tables feedparser builds on first use
before = snapshot()
imported = 0
if sys.argv[1] == "project":
    for package in ("aggregator", "index", "web"):
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, package + "."):
            importlib.import_module(info.name)
            imported += 1
    from aggregator.parse import parse_feed

    parse_feed(BODY, url="https://example.test/f.xml")
else:
    exec(sys.argv[1])
after = snapshot()
changed = sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
print(json.dumps({"changed": changed, "same_result": result() == first, "imported": imported}))
"""


def fresh_interpreter(argument: str) -> dict[str, Any]:
    """Run FRESH_INTERPRETER with ``argument`` ("project", or statements that stand for a project module)."""
    done = subprocess.run(
        [sys.executable, "-c", FRESH_INTERPRETER, argument],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def test_importing_every_module_and_parsing_leaves_feedparser_as_shipped() -> None:
    answer = fresh_interpreter("project")
    assert answer["imported"] > 60  # every module of aggregator/, index/ and web/ (the web app and the CLI too)
    assert answer["changed"] == []
    assert answer["same_result"] is True


def test_the_feedparser_check_sees_a_patch() -> None:
    # What aggregator/parse.py used to do at import time, in two of its forms.
    answer = fresh_interpreter(
        "import feedparser, feedparser.mixin; feedparser.SANITIZE_HTML = False; feedparser.mixin._cp1252 = {}"
    )
    assert answer["changed"] == ["feedparser.mixin:_cp1252", "feedparser:SANITIZE_HTML"]
    assert answer["same_result"] is False  # the sanitizer no longer removes the script
    answer = fresh_interpreter("import feedparser.api; feedparser.api.PREFERRED_XML_PARSERS.insert(0, 'x')")
    assert answer["changed"] == ["feedparser.api:PREFERRED_XML_PARSERS"]


# --- Private names of third-party libraries -------------------------------------------------------

#: Underscore names the standard library documents (namedtuple's methods, os._exit).
STDLIB_DOCUMENTED = frozenset({"_replace", "_asdict", "_fields", "_make", "_exit", "_getframe"})


def pyproject_requirements() -> dict[str, str]:
    """Return pyproject.toml's runtime dependencies: canonical distribution name -> version specifier."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [Requirement(line) for line in project["dependencies"]]
    return {canonicalize_name(req.name): str(req.specifier) for req in requirements}


@pytest.mark.parametrize("pin", PINS, ids=lambda pin: pin.distribution)
def test_installed_versions_are_inside_the_pins_the_private_names_were_checked_against(pin: Pin) -> None:
    required = pyproject_requirements()
    assert SpecifierSet(required[canonicalize_name(pin.distribution)]) == SpecifierSet(pin.specifier)
    assert Version(pin.checked) in SpecifierSet(pin.specifier)
    installed = metadata.version(pin.distribution)
    assert Version(installed) in SpecifierSet(pin.specifier), (
        f"{pin.distribution} {installed} is outside {pin.specifier}: check the names aggregator/thirdparty.py "
        "lists for it against this version, then move the pin there and in pyproject.toml"
    )


def test_every_undocumented_name_in_the_product_is_pinned() -> None:
    pinned = {pin.distribution for pin in PINS}
    unpinned = [
        item.name
        for item in PRIVATE_NAMES
        if not item.documented and item.used_in.startswith(PACKAGES) and item.distribution not in pinned
    ]
    assert unpinned == []


def _self_attributes(klass: type) -> str:
    """Return the source of the files defining the methods of ``klass`` and its bases from the same library."""
    library = klass.__module__.split(".")[0]
    files = {
        function.__code__.co_filename
        for base in klass.__mro__
        if base.__module__.split(".")[0] == library
        for function in vars(base).values()
        if inspect.isfunction(function)
    }
    return "".join(Path(file).read_text(encoding="utf-8") for file in sorted(files))


@pytest.mark.parametrize("item", PRIVATE_NAMES, ids=lambda item: item.name)
def test_listed_private_names_exist(item: PrivateName) -> None:
    module_name, _, qualified = item.name.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError:
        pytest.skip(f"{item.distribution} is not installed")
    path, _, instance_attribute = qualified.partition("().")
    for part in path.split("."):
        found = getattr(found, part)
    if instance_attribute:
        assert f"self.{instance_attribute}" in _self_attributes(found)


def private_reads() -> dict[str, list[str]]:
    """Return the private names of other libraries our code reads: name -> where (file:line).

    A name counts when it has a leading underscore and nothing of ours defines it (a def, a class,
    an assignment, an argument): the attributes of our own objects are ours to read.
    """
    files = [path for root in (*PACKAGES, "tests", "bench") for path in sorted((REPO / root).rglob("*.py"))]
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in files}
    ours: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                ours.add(node.name)
            elif isinstance(node, ast.arg):
                ours.add(node.arg)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                ours.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                ours.add(node.attr)
    local_roots = {*PACKAGES, "tests", "bench"}

    def private(name: str) -> bool:
        return name.startswith("_") and not name.startswith("__")

    found: dict[str, list[str]] = {}
    for path, tree in trees.items():
        where = str(path.relative_to(REPO))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and private(node.attr) and node.attr not in ours:
                found.setdefault(node.attr, []).append(f"{where}:{node.lineno}")
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] in local_roots:
                    continue
                in_private_module = any(private(part) for part in node.module.split("."))
                for alias in node.names:
                    if in_private_module or private(alias.name):
                        found.setdefault(f"{node.module}:{alias.name}", []).append(f"{where}:{node.lineno}")
    return found


def test_every_private_name_of_a_library_that_we_read_is_listed() -> None:
    listed = set(STDLIB_DOCUMENTED)
    for item in PRIVATE_NAMES:
        listed.add(item.name)
        listed.add(item.name.rpartition(".")[2].rpartition(":")[2])
    unlisted = {name: where for name, where in private_reads().items() if name not in listed}
    assert unlisted == {}
