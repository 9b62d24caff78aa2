"""The package's architecture, held by its import graph.

The protocol-independent core (watch -> record -> encode -> deliver, with
subscriptions, policy and history) imports nothing of the wire protocols;
the protocols are thin layers over it; only the wiring modules (the app
config, routes, test helpers) see both. No module imports another in a
cycle, counting the imports inside functions too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import rohrpost_signals

PACKAGE = Path(rohrpost_signals.__file__).resolve().parent

#: The rohrpost wire protocol, and the JSON-RPC one (every ``jsonrpc.*`` module).
ROHRPOST_PROTOCOL = {"consumers", "handlers", "main", "message", "protocol", "registry"}
#: Modules that connect the layers for users: they may import anything.
WIRING = {"", "apps", "routing", "testing", "notify", "tokens", "compatchecks", "templatetags"}


def module_names() -> Iterator[str]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts)


def is_protocol(name: str) -> bool:
    return name in ROHRPOST_PROTOCOL or name == "jsonrpc" or name.startswith("jsonrpc.")


def is_wiring(name: str) -> bool:
    return name.split(".")[0] in WIRING


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


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for imported in graph[todo.pop()] - seen:
            seen.add(imported)
            todo.append(imported)
    return seen


def test_the_graph_sees_imports_of_every_kind() -> None:
    graph = import_graph()
    assert "watching" in graph["receivers"]  # from .watching import ...
    assert "history" in graph["consumers"]  # from . import history
    assert "jsonrpc.errors" in graph["jsonrpc.calls"]  # from .errors import ...


def test_core_modules_import_nothing_of_the_wire_protocols() -> None:
    graph = import_graph()
    core = [name for name in graph if not is_protocol(name) and not is_wiring(name)]
    assert {"watching", "changes", "encoding", "dispatch", "history", "subscriptions"} <= set(core)
    leaks = {
        name: sorted(module for module in reachable(graph, name) if is_protocol(module))
        for name in core
    }
    assert {name: found for name, found in leaks.items() if found} == {}


def test_the_json_rpc_protocol_does_not_build_on_the_rohrpost_one() -> None:
    graph = import_graph()
    for name in graph:
        if name.startswith("jsonrpc"):
            assert not graph[name] & ROHRPOST_PROTOCOL, name


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles = sorted(name for name in graph if name in reachable(graph, name))
    assert cycles == []
