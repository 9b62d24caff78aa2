"""The private APIs of other packages: all in ``_compat``, and checked at start-up."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import SyncToAsync
from channels.consumer import AsyncConsumer
from django.db.backends.base.base import BaseDatabaseWrapper
from model_utils.tracker import FieldTracker

from rohrpost_signals import _compat, checks

PACKAGE = Path(_compat.__file__).resolve().parent
PRIVATE = frozenset().union(*_compat.PRIVATE_NAMES.values())
PACKAGES = tuple(_compat.PRIVATE_NAMES)
# Built-ins that reach an attribute by its name in a string.
BY_NAME = frozenset({"getattr", "hasattr", "setattr", "delattr"})


def private_uses(source: str) -> list[str]:
    """``line: name`` for each private name of another package that ``source`` touches."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in PRIVATE:
            found.append(f"{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGES):
            for alias in node.names:
                if alias.name.startswith("_") or alias.name in PRIVATE:
                    found.append(f"{node.lineno}: {node.module}.{alias.name}")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in PRIVATE:
            found.append(f"{node.lineno}: def {node.name}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in BY_NAME
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in PRIVATE
        ):
            found.append(f"{node.lineno}: {node.func.id}(..., {node.args[1].value!r})")
    return sorted(found, key=lambda use: int(use.split(":", 1)[0]))


def test_the_scan_finds_private_names() -> None:
    source = (
        "from channels_redis.utils import _consistent_hash\n"
        "hooks = connection.run_on_commit\n"
        "loop = asyncio._get_running_loop()\n"
        "class Guard:\n"
        "    @property\n"
        "    def channel_receive(self): ...\n"
        "loop = getattr(reactor, '_asyncioEventloop', None)\n"
    )
    assert private_uses(source) == [
        "1: channels_redis.utils._consistent_hash",
        "2: .run_on_commit",
        "3: ._get_running_loop",
        "6: def channel_receive",
        "7: getattr(..., '_asyncioEventloop')",
    ]


def test_only_compat_touches_other_packages_private_names() -> None:
    offenders = {
        str(path.relative_to(PACKAGE.parent)): uses
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "_compat.py" and (uses := private_uses(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def test_compat_uses_each_name_it_lists() -> None:
    """Every listed name is used in ``_compat`` beyond the list itself."""
    source = Path(_compat.__file__).read_text(encoding="utf-8")
    assert [name for name in sorted(PRIVATE) if source.count(name) < 2] == []


def test_the_installed_versions_have_the_expected_shape() -> None:
    # Runs in every job of the Django and Python matrix.
    assert _compat.shape_problems() == []
    assert checks.check_dependencies() == []


def _without_robust(self: Any, func: Any) -> None:
    """on_commit() as it was before Django 4.2."""


@pytest.mark.parametrize(
    ("target", "name", "value", "package"),
    [
        (SyncToAsync, "threadlocal", None, "asgiref"),
        (BaseDatabaseWrapper, "on_commit", _without_robust, "Django"),
        (AsyncConsumer, "__call__", lambda self, scope, receive, send: None, "channels"),
        (FieldTracker, "finalize_class", None, "django-model-utils"),
    ],
)
def test_a_changed_dependency_fails_the_system_check(
    monkeypatch: pytest.MonkeyPatch, target: Any, name: str, value: Any, package: str
) -> None:
    if value is None:
        monkeypatch.delattr(target, name)
    else:
        monkeypatch.setattr(target, name, value)
    [error] = checks.check_dependencies()
    assert error.id == checks.E090
    version = _compat._version(package)
    assert error.msg.startswith(f"{package} {version}: "), error.msg
    assert version[0].isdigit()


def test_a_changed_channels_redis_fails_the_system_check(monkeypatch: pytest.MonkeyPatch) -> None:
    utils = pytest.importorskip("channels_redis.utils")
    monkeypatch.delattr(utils, "_consistent_hash")
    [error] = checks.check_dependencies()
    assert error.id == checks.E090
    assert "channels-redis" in error.msg
    assert "_consistent_hash" in error.msg


def test_a_changed_twisted_fails_the_system_check(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("daphne")
    asyncioreactor = pytest.importorskip("twisted.internet.asyncioreactor")

    def init_keeping_the_loop_elsewhere(self: Any, eventloop: Any = None) -> None:
        self.loop = eventloop

    monkeypatch.setattr(
        asyncioreactor.AsyncioSelectorReactor, "__init__", init_keeping_the_loop_elsewhere
    )
    [error] = checks.check_dependencies()
    assert error.id == checks.E090
    version = _compat._version("Twisted")
    assert error.msg.startswith(f"Twisted {version}: "), error.msg
    assert "_asyncioEventloop" in error.msg
    assert version[0].isdigit()


def test_twisted_is_not_checked_without_daphne(monkeypatch: pytest.MonkeyPatch) -> None:
    asyncioreactor = pytest.importorskip("twisted.internet.asyncioreactor")
    monkeypatch.setattr(asyncioreactor.AsyncioSelectorReactor, "__init__", lambda self: None)
    installed = _compat._installed
    monkeypatch.setattr(
        _compat, "_installed", lambda module: module != "daphne" and installed(module)
    )
    assert checks.check_dependencies() == []


def test_the_reactor_loop_is_read_from_twisted(monkeypatch: pytest.MonkeyPatch) -> None:
    asyncioreactor = pytest.importorskip("twisted.internet.asyncioreactor")
    loop = asyncio.new_event_loop()
    try:
        # A reactor on its own loop, never installed or run, as daphne builds it.
        reactor = asyncioreactor.AsyncioSelectorReactor(loop)
        assert _compat.reactor_event_loop(reactor) is loop
        reactor.removeReader(reactor.waker)  # close the pipe it opened for itself
        reactor.waker.connectionLost(None)
    finally:
        loop.close()
    assert _compat.reactor_event_loop(object()) is None


def test_the_dependency_check_is_registered() -> None:
    from django.core.checks.registry import registry

    assert checks.check_dependencies in registry.get_checks()
