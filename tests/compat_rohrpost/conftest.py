"""Harness that runs rohrpost 4.1.0's own tests against rohrpost_signals.

``.ci/stages/12-rohrpost-compat.sh`` copies this folder next to the test
files of the pinned rohrpost sdist and runs pytest there. Nothing of theirs
is edited: their ``import rohrpost.x`` statements resolve to our modules
through the aliases below (the import changes of docs/migrating.rst), the
fixtures their conftest provided are ours, and the tests we expect to fail
are marked ``xfail(strict=True)`` from ``expected_failures.py``.

The default test run does not collect this folder (tests/conftest.py
ignores it).
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest
from expected_failures import EXPECTED_FAILURES, SECTIONS

# rohrpost module -> the module of ours it maps to. The rohrpost protocol's
# modules are aliased where their code lives, not to the re-export modules at
# the documented paths, so that a test patching ``rohrpost.message.x`` patches
# what the code calls.
ALIASES = {
    "rohrpost.main": "rohrpost_signals.protocols.rohrpost.main",
    "rohrpost.message": "rohrpost_signals.protocols.rohrpost.message",
    "rohrpost.handlers": "rohrpost_signals.protocols.rohrpost.handlers",
    "rohrpost.registry": "rohrpost_signals.protocols.rohrpost.handler_registry",
    "rohrpost.sync_consumer": "rohrpost_signals.protocols.rohrpost.consumers",
    "rohrpost.mixins": "rohrpost_mixins",
    "rohrpost.tests": "rohrpost_signals.testing",
}


def _install_aliases() -> None:
    package = types.ModuleType("rohrpost")
    package.__path__ = []  # a package, so "rohrpost.x" imports look in sys.modules
    sys.modules["rohrpost"] = package
    for alias, target in ALIASES.items():
        module = importlib.import_module(target)
        sys.modules[alias] = module
        setattr(package, alias.rsplit(".", 1)[1], module)


_install_aliases()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    collected = {item.nodeid: item for item in items}
    files = {nodeid.split("::")[0] for nodeid in collected}
    listed = {nodeid for nodeid in EXPECTED_FAILURES if nodeid.split("::")[0] in files}
    missing = sorted(listed - set(collected))
    if missing:
        raise pytest.UsageError(f"expected_failures.py lists tests that do not exist: {missing}")
    for nodeid in listed:
        label, exception = EXPECTED_FAILURES[nodeid]
        reason = f"docs/migrating.rst, {SECTIONS[label]} ({label})"
        marker = pytest.mark.xfail(strict=True, raises=exception, reason=reason)
        collected[nodeid].add_marker(marker)


@pytest.fixture
def consumer() -> Any:
    """Their conftest's ``rohrpost.tests.Consumer``; ours is ``FakeConsumer``."""
    from rohrpost_signals.testing import FakeConsumer

    return FakeConsumer()


@pytest.fixture(autouse=True)
def _restore_handlers() -> Iterator[None]:
    from rohrpost_signals.registry import HANDLERS

    before = dict(HANDLERS)
    yield
    HANDLERS.clear()
    HANDLERS.update(before)


@pytest.fixture(autouse=True)
def _messages_to_send_to_group() -> Iterator[None]:
    """Hand each queued message to ``rohrpost.mixins.send_to_group``, patched or not."""
    from rohrpost_signals.core import dispatch

    def forward(item: dispatch.Outgoing) -> bool:
        sys.modules["rohrpost.mixins"].send_to_group(group_name=item.group, message=item.text)
        return True

    dispatch.interceptors.append(forward)
    yield
    dispatch.interceptors.remove(forward)


@pytest.fixture(autouse=True)
def _independent_mixin_tests(request: pytest.FixtureRequest) -> None:
    """Start each mixin test with no logged messages.

    Their tests empty ``LOGGED_DATA`` at their end, so an expected failure
    would leave its messages to the next test; this keeps each failure its own.
    """
    logged = getattr(request.module, "LOGGED_DATA", None)
    if logged is not None:
        logged.clear()


def _model_fixture(model_name: str) -> Any:
    """An unsaved object of ``model_name``; each mixin test runs with both kinds.

    ``unchanged``: saving it again changes nothing, like rohrpost's mocks.
    ``touched``: it has an ``auto_now`` field, so every save changes it.
    Committed for real (rohrpost's tests patch the commit hook to run at
    once), with sequences reset so that the first object is pk 1 as theirs.
    """

    @pytest.fixture(params=["unchanged", "touched"])
    def fixture(request: pytest.FixtureRequest, django_db_reset_sequences: None) -> Any:
        app = "compatapp" if request.param == "unchanged" else "compattouched"
        models = importlib.import_module(f"{app}.models")
        return getattr(models, model_name)()

    return fixture


plain_obj = _model_fixture("PlainExampleModel")
obj_with_attr = _model_fixture("ModelWithAttr")
obj_with_method = _model_fixture("ModelWithMethod")
obj_with_method_and_attr = _model_fixture("ModelWithMethodAndAttr")
obj_with_data = _model_fixture("ModelWithData")
obj_with_serializer = _model_fixture("ModelWithSerializer")
obj_with_serializer_and_data = _model_fixture("ModelWithSerializerAndData")
