"""The pieces of ``limits``, ``encoding``, ``failurelog`` and ``framelimit``, on their own."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.test import override_settings

from rohrpost_signals import checks
from rohrpost_signals.core.encoding import encode
from rohrpost_signals.core.failurelog import FailureLog
from rohrpost_signals.core.framelimit import recommended_server_limit, server_frame_limit
from rohrpost_signals.core.history import Replay
from rohrpost_signals.core.limits import (
    MAX_JSON_DEPTH,
    ConnectionBudgets,
    TokenBucket,
    load_json,
    replay_since,
    valid_message_id,
)
from rohrpost_signals.exceptions import ProtocolError
from rohrpost_signals.protocols.rohrpost.frames import LAST_RESORT_REPLY, error_frame

# --- load_json ------------------------------------------------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "text",
    [
        nested(5000),  # RecursionError inside the C parser
        nested(MAX_JSON_DEPTH + 1),
        '{"id": 1, "type": "ping", "data": ' + nested(200) + "}",
        '{"a":' * 1200 + "1" + "}" * 1200,
        "NaN",
        '{"id": NaN, "type": "ping"}',
        '{"id": 1, "type": "ping", "data": [Infinity]}',
        '{"id": 1, "type": "ping", "data": -Infinity}',
        '{"id": 1e400, "type": "ping"}',
        '{"id": 1, "type": "ping", "data": -1e999}',
        '{"id": ' + "9" * 5000 + ', "type": "ping"}',  # over Python's int digit limit
    ],
)
def test_hostile_json_is_a_bad_json_protocol_error(text: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        load_json(text)
    assert caught.value.code == "bad-json"
    assert caught.value.error.startswith("Could not decode JSON message: ")


def test_nesting_up_to_the_limit_and_brackets_in_strings_are_fine() -> None:
    assert load_json(nested(MAX_JSON_DEPTH)) == json.loads(nested(MAX_JSON_DEPTH))
    text = json.dumps({"id": 1, "data": "[" * 500})
    assert load_json(text)["data"] == "[" * 500
    assert load_json('{"x": 1.5e300}') == {"x": 1.5e300}


# --- ids ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (0, True),
        (2**53 - 1, True),
        (-(2**53 - 1), True),
        (2**53, False),
        (-(2**53), False),
        (2**64, False),
        ("x" * 128, True),
        ("x" * 129, False),
        ("\ud800", True),  # echoed as an ASCII escape
        (1.5, False),
        (1.0, False),
        (float("nan"), False),
        (float("inf"), False),
        (True, False),
        (None, False),
        ([1], False),
        ({}, False),
    ],
)
def test_valid_message_ids(value: Any, valid: bool) -> None:
    assert valid_message_id(value) is valid


def test_error_frames_drop_ids_a_browser_cannot_read() -> None:
    frame = error_frame(ProtocolError("x", 2**64, "ping"))
    assert json.loads(frame)["id"] is None
    frame = error_frame(ProtocolError("x", "\ud800", "\udfff"))
    assert frame.isascii()
    assert json.loads(frame)["type"] == "\udfff"


def test_an_error_reply_that_cannot_be_encoded_falls_back_to_a_constant(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exc = ProtocolError("x", 1, "ping")
    exc.error = object()  # type: ignore[assignment]
    with caplog.at_level(logging.ERROR, "rohrpost_signals"):
        assert error_frame(exc) == LAST_RESORT_REPLY
    assert json.loads(LAST_RESORT_REPLY)["code"] == "internal-error"


# --- encoding -------------------------------------------------------------------


def test_encoding_is_ascii_and_never_emits_non_finite_numbers() -> None:
    text = encode({"name": "Müller \ud800 ✓", "ratio": float("nan"), "big": [float("-inf")]})
    assert text.isascii()
    assert "NaN" not in text
    assert "Infinity" not in text
    assert json.loads(text) == {"name": "Müller \ud800 ✓", "ratio": None, "big": [None]}


# --- token buckets --------------------------------------------------------------


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    bucket = TokenBucket(capacity=3, rate=2, stamp=100.0)
    assert [bucket.take(now=100.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(now=100.5)  # 0.5 s x 2/s = one token
    assert not bucket.take(now=100.5)
    assert bucket.take(2, now=102.0)
    assert not bucket.take(10, now=1000.0)  # never more than the capacity


@override_settings(ROHRPOST={"MAX_REQUEST_BURST": 2, "MAX_REQUESTS_PER_SECOND": 0.001})
def test_request_budget() -> None:
    budgets = ConnectionBudgets()
    assert [budgets.allow_request() for _ in range(3)] == [True, True, False]
    error = budgets.rate_limited(7, "ping")
    assert (error.code, error.message_id, error.handler) == ("rate-limited", 7, "ping")


@override_settings(ROHRPOST={"MAX_REPLAY_BYTES_PER_MINUTE": 100})
def test_replay_over_the_budget_becomes_resync_required() -> None:
    budgets = ConnectionBudgets()
    small = Replay(10, "e", ("a" * 60,))
    assert budgets.charge_replay(small) is small
    # 40 bytes left: the next 60 do not fit, and nothing is taken for them.
    assert budgets.charge_replay(small) == Replay(10, "e", (), resync=True)
    assert budgets.charge_replay(Replay(10, "e", ("b" * 40,))).texts == ("b" * 40,)
    assert budgets.charge_replay(Replay(11, "e")) == Replay(11, "e")  # nothing to replay is free


@override_settings(ROHRPOST={"MAX_OUTGOING_BYTES": 1000})
def test_outgoing_budget_stays_exhausted() -> None:
    budgets = ConnectionBudgets()
    assert budgets.hand_over(600)
    assert not budgets.hand_over(600)
    assert budgets.overflowed
    assert not budgets.hand_over(1)  # closed for good, even after a refill


@pytest.mark.parametrize(
    ("since", "already_has", "expected"),
    [
        (5, None, 5),  # a first subscribe replays
        (None, 9, None),
        (5, 9, None),  # a repeat with an older since replays nothing
        (9, 9, None),
        (10, 9, 10),  # a newer since does
    ],
)
def test_replay_since(since: int | None, already_has: int | None, expected: int | None) -> None:
    assert replay_since(since, already_has) == expected


# --- failure log ----------------------------------------------------------------


def test_failures_are_logged_once_then_summed_up(caplog: pytest.LogCaptureFixture) -> None:
    log = FailureLog("failed", interval=3600)
    with caplog.at_level(logging.ERROR, "rohrpost_signals"):
        for n in range(1235):
            log.record(f"group-{n % 57}", f"Could not send message {n}: ConnectionError")
        assert len(caplog.records) == 1
        assert "Could not send message 0" in caplog.records[0].getMessage()
        log.report()
    assert len(caplog.records) == 2
    summary = caplog.records[1].getMessage()
    assert summary.startswith("1,234 messages to 57 groups failed in the last ")
    assert "Could not send message 1234" in summary
    caplog.clear()
    with caplog.at_level(logging.ERROR, "rohrpost_signals"):
        log.report()  # a quiet interval logs nothing
        log.report()
        log.record("group-1", "Could not send again")  # ... and the next failure is logged at once
    assert [r.getMessage()[:20] for r in caplog.records] == ["Could not send again"]


# --- frame size limit of the server and the checks ------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/venv/bin/uvicorn", "app:app"], ("uvicorn", 16 * 1024 * 1024)),
        (["/venv/bin/uvicorn", "app:app", "--ws-max-size", "131072"], ("uvicorn", 131072)),
        (["/x/uvicorn/__main__.py", "--ws-max-size=5"], ("uvicorn", 5)),
        (["/venv/bin/daphne", "app:app"], ("daphne", 1024 * 1024)),
        (["/x/daphne/__main__.py", "--websocket-max-message-size", "0"], ("daphne", 0)),
        (["manage.py", "runserver"], ("daphne's runserver", 131072)),  # the test settings
    ],
)
def test_server_frame_limit(argv: list[str], expected: tuple[str, int]) -> None:
    assert server_frame_limit(argv) == expected


def test_w050_warns_about_a_server_limit_far_above_max_message_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert recommended_server_limit() == 131072
    monkeypatch.setattr("sys.argv", ["/venv/bin/uvicorn", "app:app"])
    [warning] = checks.check_server_frame_limit()
    assert warning.id == checks.W050
    assert "131072" in (warning.hint or "")
    monkeypatch.setattr("sys.argv", ["/venv/bin/uvicorn", "app:app", "--ws-max-size", "131072"])
    assert checks.check_server_frame_limit() == []
    monkeypatch.setattr("sys.argv", ["/venv/bin/daphne", "--websocket-max-message-size", "0"])
    [warning] = checks.check_server_frame_limit()
    assert "no limit" in warning.msg


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("MAX_REQUESTS_PER_SECOND", 0),
        ("MAX_REQUESTS_PER_SECOND", "fast"),
        ("MAX_REQUEST_BURST", 1.5),
        ("MAX_REPLAY_BYTES_PER_MINUTE", -1),
        ("MAX_OUTGOING_BYTES", True),
        ("HISTORY_MAX_BYTES", None),
        ("SUBSCRIBE_TIMEOUT", 0),
        ("LAYER_OUTAGE_TIMEOUT", 0),
        ("LAYER_OUTAGE_TIMEOUT", "10 minutes"),
    ],
)
def test_e050_bad_budgets(key: str, value: Any) -> None:
    with override_settings(ROHRPOST={key: value}):
        ids = [message.id for message in checks.check_settings()]
    assert ids == [checks.E050]


def test_e051_outgoing_budget_smaller_than_a_few_replies() -> None:
    with override_settings(ROHRPOST={"MAX_OUTGOING_BYTES": 100_000}):
        assert [m.id for m in checks.check_settings()] == [checks.E051]
    with override_settings(ROHRPOST={"MAX_OUTGOING_BYTES": 100_000, "MAX_MESSAGE_BYTES": 25_000}):
        assert checks.check_settings() == []
    with override_settings(ROHRPOST={"SUBSCRIBE_TIMEOUT": 0.5, "MAX_REQUESTS_PER_SECOND": 2.5}):
        assert checks.check_settings() == []
