"""The test suite itself: no test may pass only on an idle machine.

A fixed ``sleep`` right before an assertion bets that something finishes in
time. Tests wait on the condition instead (``tests.helpers.eventually``), or,
to show that nothing more arrives, on a later marker message that would come
after anything extra.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _is_sleep(statement: ast.stmt) -> bool:
    if not isinstance(statement, ast.Expr):
        return False
    call = statement.value.value if isinstance(statement.value, ast.Await) else statement.value
    if not isinstance(call, ast.Call):
        return False
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name == "sleep"


def _blocks(tree: ast.AST) -> Iterator[list[ast.stmt]]:
    for node in ast.walk(tree):
        for attribute in ("body", "orelse", "finalbody"):
            block = getattr(node, attribute, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield block


def _waits(statement: ast.stmt) -> bool:
    """Whether the statement waits for something: an ``await`` or a ``wait*`` call."""
    for node in ast.walk(statement):
        if isinstance(node, ast.Await):
            return True
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name.startswith(("wait", "eventually")):
                return True
    return False


def sleeps_before_assertions(source: str) -> list[int]:
    """Line numbers of ``sleep(...)`` statements that an ``assert`` follows with no wait between."""
    found = []
    for block in _blocks(ast.parse(source)):
        for index, statement in enumerate(block):
            if not _is_sleep(statement):
                continue
            for following in block[index + 1 :]:
                if isinstance(following, ast.Assert):
                    found.append(statement.lineno)
                    break
                if _waits(following):
                    break
    return sorted(found)


def test_the_scan_finds_a_sleep_before_an_assertion() -> None:
    source = (
        "async def test_x(ws):\n"
        "    await asyncio.sleep(1.0)\n"
        "    assert ws.done\n"
        "def test_y():\n"
        "    time.sleep(0.5)\n"
        "    assert True\n"
        "async def test_z(ws):\n"
        "    await asyncio.sleep(1.0)  # anything extra arrives by now\n"
        "    delivery = check(ws)\n"
        "    assert delivery.perfect\n"
        "def wait():\n"
        "    while not ready():\n"
        "        time.sleep(0.1)\n"
        "async def hop(ws):\n"
        "    await asyncio.sleep(0.1)\n"
        "    await ws.close()\n"
        "    assert ws.closed\n"
    )
    assert sleeps_before_assertions(source) == [2, 5, 8]


def test_no_test_sleeps_before_an_assertion() -> None:
    offenders = [
        f"{path.relative_to(TESTS.parent)}:{line}"
        for path in sorted(TESTS.rglob("*.py"))
        for line in sleeps_before_assertions(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "wait on the condition instead of sleeping: " + ", ".join(offenders)


PACKAGE = TESTS.parent / "rohrpost_signals"


def polling_loops(source: str) -> list[int]:
    """Line numbers of loops that sleep a fixed literal time: polling for a condition.

    Periodic work sleeps a named interval (``CHECK_INTERVAL``) and is not polling.
    """
    found = []
    for loop in ast.walk(ast.parse(source)):
        if not isinstance(loop, ast.While | ast.For | ast.AsyncFor):
            continue
        for node in ast.walk(loop):
            if (
                isinstance(node, ast.Call)
                and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) == "sleep"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.append(node.lineno)
    return sorted(set(found))


def test_the_scan_finds_a_polling_loop() -> None:
    source = (
        "def flush():\n"
        "    while not done():\n"
        "        time.sleep(0.0005)\n"
        "async def keep():\n"
        "    while True:\n"
        "        await asyncio.sleep(CHECK_INTERVAL)\n"
    )
    assert polling_loops(source) == [3]


def test_the_package_waits_instead_of_polling() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line in polling_loops(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "wait on a condition or future instead: " + ", ".join(offenders)


#: Channels' WebsocketCommunicator methods whose ``timeout`` defaults to 1 s:
#: a busy machine takes longer to open a socket or send a frame.
ONE_SECOND_DEFAULTS = {"connect", "receive_from", "receive_json_from", "receive_output"}


def waits_with_one_second_defaults(source: str) -> list[int]:
    """Line numbers of awaited communicator calls that leave ``timeout`` at Channels' 1 s."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Await) and isinstance(node.value, ast.Call)):
            continue
        call = node.value
        if not isinstance(call.func, ast.Attribute) or call.func.attr not in ONE_SECOND_DEFAULTS:
            continue
        # connect(host, port) and the like are other libraries' calls.
        if not call.args and not any(k.arg == "timeout" for k in call.keywords):
            found.append(node.lineno)
    return found


def test_the_scan_finds_a_communicator_wait_with_the_default_timeout() -> None:
    source = (
        "async def test_x(ws):\n"
        "    await ws.connect()\n"  # line 2: 1 s
        "    await ws.connect(timeout=10)\n"
        "    await ws.receive_from()\n"  # line 4: 1 s
        "    await other.connect(('127.0.0.1', 80))\n"
    )
    assert waits_with_one_second_defaults(source) == [2, 4]


def test_no_test_waits_on_a_communicator_for_only_a_second() -> None:
    offenders = {
        str(path.relative_to(TESTS)): lines
        for path in sorted(TESTS.rglob("*.py"))
        if "compat_rohrpost" not in path.parts
        if (lines := waits_with_one_second_defaults(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}
