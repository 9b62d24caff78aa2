"""The package's architecture, held by its physical layout.

``rohrpost_signals/core/`` is the protocol-independent engine (watch ->
record -> encode -> deliver, with subscriptions, policy and history); each
wire protocol is a subpackage of ``rohrpost_signals/protocols/``, a thin layer
over the core. The core imports nothing under ``protocols/``, no protocol
imports another, and no module imports another in a cycle, counting the
imports inside functions too. The top level holds the app's infrastructure,
the public modules that wire the layers together, and thin re-export modules
that keep the documented import paths of moved code working.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import rohrpost_signals

PACKAGE = Path(rohrpost_signals.__file__).resolve().parent
ROOT = PACKAGE.parent

#: Documented import path -> where its code lives, and the names the docs
#: promise there (docs/api.rst, migrating.rst, delivery.rst, settings.rst).
SHIMS: dict[str, tuple[str, set[str]]] = {
    "consumers": ("protocols.rohrpost.consumers", {"RohrpostConsumer", "SyncRohrpostConsumer"}),
    "registry": (
        "protocols.rohrpost.handler_registry",
        {"HANDLERS", "HandlerAlreadyRegistered", "rohrpost_handler"},
    ),
    "message": (
        "protocols.rohrpost.message",
        {
            "TolerantJSONEncoder",
            "asend_error",
            "asend_message",
            "build_message",
            "send_error",
            "send_message",
            "send_success",
            "send_to_group",
        },
    ),
    "main": ("protocols.rohrpost.main", {"handle_rohrpost_message", "ahandle_rohrpost_message"}),
    "handlers": ("protocols.rohrpost.handlers", {"handle_ping"}),
    "dispatch": ("core.dispatch", {"Stats", "aflush", "flush", "stats"}),
    "repair": ("core.repair", {"stats"}),
    "policy": ("core.policy", {"default_policy"}),
    "jsonrpc": (
        "protocols.jsonrpc",
        {
            "JsonRpcConsumer",
            "JsonRpcView",
            "RpcContext",
            "RpcError",
            "SyncJsonRpcConsumer",
            "anotify_channel",
            "anotify_group",
            "notify_channel",
            "notify_group",
            "rpc_method",
            "rpc_notification",
        },
    ),
}
#: The app's infrastructure and the public modules that connect the layers
#: for users; they may import the core and the protocols.
TOP_LEVEL = {
    "",
    "_compat",
    "apps",
    "checks",
    "compatchecks",
    "conf",
    "exceptions",
    "mixins",
    "notify",
    "routing",
    "security",
    "templatetags",
    "templatetags.rohrpost",
    "testing",
    "tokens",
}
PROTOCOLS = ("rohrpost", "jsonrpc")


def module_names() -> Iterator[str]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts)


def in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def imports_of(name: str, modules: set[str]) -> set[str]:
    """The package modules ``name`` imports, anywhere in its code."""
    path = PACKAGE / (name.replace(".", "/") if name else "")
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - node.level + 1] if node.level > 1 else base
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif (node.module or "").startswith("rohrpost_signals"):
                target = node.module.removeprefix("rohrpost_signals").lstrip(".")  # type: ignore[union-attr]
            else:
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}".lstrip(".")
                found.add(submodule if submodule in modules else target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("rohrpost_signals"):
                    found.add(alias.name.removeprefix("rohrpost_signals").lstrip("."))
    return {module for module in found if module in modules and module != name}


def import_graph() -> dict[str, set[str]]:
    modules = set(module_names())
    return {name: imports_of(name, modules) for name in modules}


def with_parent_packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Importing ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` first."""

    def parents(name: str) -> set[str]:
        parts = name.split(".")
        return {".".join(parts[:i]) for i in range(len(parts))} - {name}

    return {
        name: imported
        | {parent for module in imported | {name} for parent in parents(module)} - {name}
        for name, imported in graph.items()
    }


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for imported in graph[todo.pop()] - seen:
            seen.add(imported)
            todo.append(imported)
    return seen


def core_modules() -> list[str]:
    return sorted(name for name in module_names() if in_package(name, "core"))


def test_the_graph_sees_imports_of_every_kind() -> None:
    graph = import_graph()
    assert "core.watching" in graph["core.receivers"]  # from .watching import ...
    assert "core.history" in graph["protocols.rohrpost.consumers"]  # from ...core import history
    assert "conf" in graph["core.dispatch"]  # from ..conf import conf
    assert "protocols.jsonrpc.errors" in graph["protocols.jsonrpc.calls"]  # from .errors import
    assert "core.authorization" in graph[""]  # inside a function
    assert "" in with_parent_packages(graph)["core.dispatch"]


def test_every_module_is_in_its_place() -> None:
    """Code lives in core/ or protocols/<name>/; the top level is a fixed set."""
    places = {"core", *(f"protocols.{protocol}" for protocol in PROTOCOLS), "protocols"}
    misplaced = sorted(
        name
        for name in module_names()
        if name not in TOP_LEVEL | set(SHIMS) and not any(in_package(name, p) for p in places)
    )
    assert misplaced == []
    assert {"core.watching", "core.changes", "core.encoding", "core.dispatch"} <= set(
        core_modules()
    )
    assert {"core.history", "core.subscriptions", "core.policy"} <= set(core_modules())


def test_core_modules_import_nothing_of_the_wire_protocols() -> None:
    graph = with_parent_packages(import_graph())
    leaks = {
        name: sorted(module for module in reachable(graph, name) if in_package(module, "protocols"))
        for name in core_modules()
    }
    assert {name: found for name, found in leaks.items() if found} == {}


@pytest.mark.parametrize(("protocol", "other"), [("jsonrpc", "rohrpost"), ("rohrpost", "jsonrpc")])
def test_a_protocol_does_not_build_on_another(protocol: str, other: str) -> None:
    graph = with_parent_packages(import_graph())
    package = f"protocols.{protocol}"
    leaks = {
        name: sorted(m for m in reachable(graph, name) if in_package(m, f"protocols.{other}"))
        for name in graph
        if in_package(name, package)
    }
    assert leaks, package
    assert {name: found for name, found in leaks.items() if found} == {}
    # Nor through the documented paths of the other protocol's code.
    other_shims = {
        shim for shim, (real, _) in SHIMS.items() if in_package(real, f"protocols.{other}")
    }
    assert other_shims
    assert {name: graph[name] & other_shims for name in leaks if graph[name] & other_shims} == {}


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles = sorted(name for name in graph if name in reachable(graph, name))
    assert cycles == []


# --- importing a core module alone ---------------------------------------------

# Django is set up with the test project's settings, minus the apps that
# import this package (ours registers the rohrpost handlers in ready()), so
# that what is in sys.modules afterwards is what the one import brought in.
ISOLATED_IMPORT = """
import sys
import django
from django.conf import settings
from testproject import settings as base

names = {key: getattr(base, key) for key in dir(base) if key.isupper()}
names["INSTALLED_APPS"] = [
    app for app in base.INSTALLED_APPS
    if app.startswith(("django.", "channels", "daphne", "rest_framework"))
]
settings.configure(**names)
django.setup()
assert not [m for m in sys.modules if m.startswith("rohrpost_signals")], "set-up imported us"
__import__(sys.argv[1])
print(" ".join(sorted(m for m in sys.modules if m.startswith("rohrpost_signals.protocols"))))
"""


def protocol_modules_imported_by(module: str) -> list[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "testproject"), str(ROOT)]),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-c", ISOLATED_IMPORT, module],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


# A fresh interpreter with Django per module, about thirty of them: on a
# loaded machine more than pytest-timeout's default allows for one test.
@pytest.mark.timeout(900)
def test_importing_each_core_module_alone_imports_no_protocol() -> None:
    modules = [f"rohrpost_signals.{name}" for name in core_modules()]
    assert len(modules) > 20
    with ThreadPoolExecutor(max_workers=4) as pool:
        found = dict(zip(modules, pool.map(protocol_modules_imported_by, modules), strict=True))
    assert {module: imported for module, imported in found.items() if imported} == {}


def test_the_isolated_import_sees_a_protocol_import() -> None:
    """The check above can fail: the routes import both protocols."""
    imported = protocol_modules_imported_by("rohrpost_signals.routing")
    assert "rohrpost_signals.protocols.rohrpost.consumers" in imported
    assert "rohrpost_signals.protocols.jsonrpc.consumers" in imported


# --- the documented paths of moved code ----------------------------------------


@pytest.mark.parametrize("shim", sorted(SHIMS))
def test_a_documented_path_re_exports_the_same_objects(shim: str) -> None:
    real_name, documented = SHIMS[shim]
    module = importlib.import_module(f"rohrpost_signals.{shim}")
    real = importlib.import_module(f"rohrpost_signals.{real_name}")
    assert documented <= set(module.__all__)
    # The same objects, never copies: stats, registries and interceptors
    # exist once, whichever path a project imports them from.
    assert {name: getattr(module, name) is getattr(real, name) for name in module.__all__} == {
        name: True for name in module.__all__
    }
    own = {
        name for name in vars(module) if not name.startswith("__") and name not in module.__all__
    }
    assert own == set()


@pytest.mark.parametrize("shim", sorted(SHIMS))
def test_a_documented_path_holds_no_code(shim: str) -> None:
    """A re-export module is a docstring, one import from the real module and ``__all__``."""
    real_name = SHIMS[shim][0]
    path = PACKAGE / f"{shim}.py"
    body = ast.parse(path.read_text(encoding="utf-8")).body
    docstring, *imports, exported = body
    assert isinstance(docstring, ast.Expr)
    assert isinstance(docstring.value, ast.Constant)
    assert real_name.replace(".", "/") in docstring.value.value.replace(".", "/")
    assert [(node.level, node.module) for node in imports if isinstance(node, ast.ImportFrom)] == [
        (1, real_name)
    ]
    assert len(imports) == 1
    assert isinstance(exported, ast.Assign)
    assert ast.unparse(exported.targets[0]) == "__all__"
