"""The docs must not drift from the code.

* every ``ROHRPOST`` key the code reads, every model option and every system
  check id is documented in ``docs/settings.rst`` (with the right default);
* every error text the server can send is on the protocol page;
* the quickstart's settings and ``asgi.py`` run as pasted, in a fresh process,
  and deliver a change to a WebSocket client;
* the packaging metadata agrees with itself.
"""

from __future__ import annotations

import ast
import configparser
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.template import Context, Template

from rohrpost_signals.conf import DEFAULTS, MODEL_OPTIONS
from shop.models import Customer, Order

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PACKAGE = ROOT / "rohrpost_signals"
CHECK_ID = re.compile(r"""["'](rohrpost_signals\.[A-Z]\d{3})["']""")


def page(name: str) -> str:
    path = DOCS / name
    assert path.exists(), f"docs/{name} is missing"
    return path.read_text(encoding="utf-8")


def directive_blocks(text: str, directive: str) -> dict[str, str]:
    """``{argument: indented body}`` for every ``.. directive:: argument``."""
    blocks: dict[str, str] = {}
    lines = text.splitlines()
    start = re.compile(rf"^\.\. {re.escape(directive)}:: (\S+)\s*$")
    for index, line in enumerate(lines):
        match = start.match(line)
        if not match:
            continue
        body = []
        for following in lines[index + 1 :]:
            if following.strip() and not following.startswith(" "):
                break
            body.append(following)
        blocks[match.group(1)] = textwrap.dedent("\n".join(body))
    return blocks


def field(body: str, name: str) -> str | None:
    match = re.search(rf"^:{re.escape(name)}: (.+)$", body, re.MULTILINE)
    return match.group(1).strip() if match else None


def package_sources() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(PACKAGE.rglob("*.py"))}


# --- settings -----------------------------------------------------------------


def test_every_key_the_code_reads_has_a_default() -> None:
    # conf.get() falls back to DEFAULTS, so a key read anywhere must be in it;
    # the check for unknown keys (E002) relies on the same dict.
    read = set()
    for source in package_sources().values():
        read |= set(re.findall(r"\bconf\.([A-Z][A-Z0-9_]+)\b", source))
        read |= set(re.findall(r"""\bconf\.get\(\s*["']([A-Z][A-Z0-9_]+)["']""", source))
    assert read, "found no ROHRPOST reads; has conf moved?"
    assert read - set(DEFAULTS) == set()


def test_every_rohrpost_key_is_documented() -> None:
    documented = directive_blocks(page("settings.rst"), "rohrpost-setting")
    assert sorted(set(DEFAULTS) - set(documented)) == [], "keys without docs"
    assert sorted(set(documented) - set(DEFAULTS)) == [], "docs for keys the code ignores"


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_documented_default_and_type_match_the_code(key: str) -> None:
    body = directive_blocks(page("settings.rst"), "rohrpost-setting").get(key)
    assert body is not None, f"ROHRPOST[{key!r}] is not documented"
    default = field(body, "Default")
    assert default is not None, f"ROHRPOST[{key!r}] has no :Default: field"
    literal = re.fullmatch(r"``(.+)``", default)
    assert literal, f":Default: of {key} must be one ``literal``, got {default!r}"
    assert ast.literal_eval(literal.group(1)) == DEFAULTS[key]
    assert field(body, "Type"), f"ROHRPOST[{key!r}] has no :Type: field"
    checks = field(body, "Checks") or ""
    assert re.search(r":rohrpost-check:`rohrpost_signals\.[A-Z]\d{3}`", checks), (
        f"ROHRPOST[{key!r}] names no system check in :Checks:"
    )


def test_every_model_option_is_documented() -> None:
    documented = directive_blocks(page("settings.rst"), "rohrpost-option")
    assert sorted(MODEL_OPTIONS - set(documented)) == [], "model options without docs"
    assert sorted(set(documented) - MODEL_OPTIONS) == [], "docs for options the code ignores"
    for name, body in documented.items():
        assert field(body, "Default"), f"model option {name!r} has no :Default: field"


def test_every_check_id_is_documented() -> None:
    in_code = set()
    for source in package_sources().values():
        in_code |= set(CHECK_ID.findall(source))
    assert in_code, "found no check ids in the package"
    documented = set(directive_blocks(page("settings.rst"), "rohrpost-check"))
    assert sorted(in_code - documented) == [], "check ids without docs"
    assert sorted(documented - in_code) == [], "documented check ids the code never emits"


# --- wire protocol ------------------------------------------------------------


def _error_texts() -> set[str]:
    """The fixed parts of every error text the server builds."""

    def parts(node: ast.expr) -> list[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, ast.JoinedStr):
            return [v.value for v in node.values if isinstance(v, ast.Constant)]
        return []

    found: set[str] = set()
    for name in ("protocol.py", "consumers.py", "main.py", "handlers.py", "limits.py"):
        tree = ast.parse((PACKAGE / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if called == "ProtocolError" and node.args:
                found.update(parts(node.args[0]))
            elif called in ("build_message", "build_text"):
                error = node.args[2] if len(node.args) > 2 else None
                for keyword in node.keywords:
                    if keyword.arg == "error":
                        error = keyword.value
                if error is not None:
                    found.update(parts(error))
    # Separators such as "." or "'" between placeholders say nothing.
    return {text.strip() for text in found if len(text.strip()) > 3}


def test_every_error_text_is_on_the_protocol_page() -> None:
    texts = _error_texts()
    assert len(texts) >= 8, f"expected the protocol's error texts, found {texts}"
    protocol = " ".join(page("protocol.rst").split())
    missing = sorted(text for text in texts if " ".join(text.split()) not in protocol)
    assert missing == []


# --- quickstart ---------------------------------------------------------------


def named_code_block(text: str, name: str) -> str:
    """The body of the code block that carries ``:name: <name>``."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip() != f":name: {name}":
            continue
        body = []
        started = False
        for following in lines[index + 1 :]:
            if not started and (not following.strip() or following.strip().startswith(":")):
                continue
            if following.strip() and not following.startswith("   "):
                break
            started = True
            body.append(following)
        return textwrap.dedent("\n".join(body)).strip() + "\n"
    raise AssertionError(f"no code block named {name!r} in the quickstart")


QUICKSTART_BASE_SETTINGS = """\
# What `django-admin startproject mysite` and `startapp shop` leave behind.
SECRET_KEY = "quickstart-test"
DEBUG = False
ALLOWED_HOSTS = ["localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "shop",
]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {db!r}}}}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "static/"
USE_TZ = True

# --- pasted from the quickstart ---
"""

QUICKSTART_CLIENT = """\
import asyncio
import os

os.environ["DJANGO_SETTINGS_MODULE"] = "mysite.settings"

from mysite.asgi import application  # noqa: E402  (sets Django up)

from channels.db import database_sync_to_async  # noqa: E402
from channels.testing import WebsocketCommunicator  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from shop.models import Customer, Order  # noqa: E402

call_command("check", fail_level="ERROR")
call_command("migrate", verbosity=0)
user = User.objects.create_user("ada")
client = Client()
client.force_login(user)
cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
order = Order.objects.create(customer=Customer.objects.create(name="Ada"))
order.refresh_from_db()


def pay() -> None:
    order.status = "paid"
    order.save()


async def main() -> None:
    socket = WebsocketCommunicator(
        application,
        "/ws/rohrpost/",
        headers=[(b"origin", b"http://localhost"), (b"cookie", cookie)],
    )
    connected, _ = await socket.connect()
    assert connected
    await socket.send_json_to({"id": 1, "type": "ping"})
    assert await socket.receive_json_from(timeout=5) == {"id": 1, "type": "pong"}
    group = f"order-{order.pk}"
    await socket.send_json_to({"id": 2, "type": "subscribe", "data": {"group": group}})
    reply = await socket.receive_json_from(timeout=5)
    assert (reply["id"], reply["type"], reply["data"]["group"]) == (2, "subscribe", group), reply
    assert "error" not in reply, reply
    await database_sync_to_async(pay)()
    update = await socket.receive_json_from(timeout=5)
    assert update["type"] == "subscription-update", update
    data = dict(update["data"])
    seq = data.pop("seq", None)
    assert data == {
        "type": "update",
        "group": group,
        "object": {"id": order.pk, "status": "paid", "total": "0.00", "updated_fields": ["status"]},
    }, update
    if "seq" in reply["data"]:  # resumable delivery numbers each group's messages
        assert seq == reply["data"]["seq"] + 1, (reply, update)
    await socket.disconnect()
    print("quickstart ok")


asyncio.run(main())
"""


def test_quickstart_settings_and_routing_work_as_pasted(tmp_path: Path) -> None:
    text = page("quickstart.rst")
    settings_snippet = named_code_block(text, "quickstart-settings")
    asgi_snippet = named_code_block(text, "quickstart-asgi")
    mysite = tmp_path / "mysite"
    mysite.mkdir()
    (mysite / "__init__.py").write_text("")
    base = QUICKSTART_BASE_SETTINGS.format(db=str(tmp_path / "db.sqlite3"))
    (mysite / "settings.py").write_text(base + settings_snippet)
    (mysite / "asgi.py").write_text(asgi_snippet)
    (tmp_path / "client.py").write_text(QUICKSTART_CLIENT)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "RPS_", "REDIS_"))
    }
    # The quickstart's example app is the test project's `shop`.
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT / "testproject"), str(ROOT)])
    result = subprocess.run(
        [sys.executable, "client.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "quickstart ok" in result.stdout


def test_quickstart_settings_snippet_is_short_and_complete() -> None:
    snippet = named_code_block(page("quickstart.rst"), "quickstart-settings")
    code_lines = [line for line in snippet.splitlines() if line.strip()]
    assert len(code_lines) <= 12, "the quickstart promises about ten lines"
    namespace: dict[str, object] = {"INSTALLED_APPS": ["django.contrib.auth"]}
    exec(compile(snippet, "quickstart-settings", "exec"), namespace)
    apps = namespace["INSTALLED_APPS"]
    assert isinstance(apps, list)
    assert {"channels", "rohrpost_signals"} <= set(apps)
    assert {"ROHRPOST", "CHANNEL_LAYERS", "ASGI_APPLICATION"} <= set(namespace)


JS_HARNESS = """\
"use strict";
// A stand-in WebSocket that confirms subscriptions and then pushes one update.
const assert = require("assert");
global.RohrpostClient = require(process.argv[2]);
const status = {textContent: "new"};
global.document = {getElementById: (id) => (id === "status" ? status : null)};
global.location = {protocol: "https:", host: "shop.example"};
const sent = [];
class FakeSocket {
  constructor(url) {
    this.url = url;
    this.listeners = {};
    FakeSocket.urls.push(url);
    setTimeout(() => this.fire("open", {}), 0);
  }
  addEventListener(type, listener) {
    (this.listeners[type] = this.listeners[type] || []).push(listener);
  }
  fire(type, event) {
    (this.listeners[type] || []).forEach((listener) => listener(event));
  }
  reply(message) {
    setTimeout(() => this.fire("message", {data: JSON.stringify(message)}), 0);
  }
  send(text) {
    const request = JSON.parse(text);
    sent.push(request);
    if (request.type !== "subscribe") return;
    const group = request.data.group;
    this.reply({id: request.id, type: "subscribe", data: {group}});
    this.reply({
      id: 8731,
      type: "subscription-update",
      data: {type: "update", group, object: {id: 5, status: "paid", updated_fields: ["status"]}},
    });
  }
  close() {}
}
FakeSocket.urls = [];
global.WebSocket = FakeSocket;
const snippet = require("fs").readFileSync(process.argv[3], "utf8");
new Function(snippet)();
setTimeout(() => {
  assert.deepStrictEqual(FakeSocket.urls, ["wss://shop.example/ws/rohrpost/"]);
  assert.deepStrictEqual(sent.map((r) => [r.type, r.data]), [["subscribe", {group: "order-5"}]]);
  assert.strictEqual(status.textContent, "paid");
  console.log("snippet ok");
  process.exit(0);
}, 200);
"""


def test_quickstart_javascript_runs_against_the_packaged_client(tmp_path: Path) -> None:
    snippet = named_code_block(page("quickstart.rst"), "quickstart-js")
    static = re.search(r"""\{% static ["']([^"']+)["'] %\}""", snippet)
    assert static, "the JS snippet should load the client with {% static %}"
    client = PACKAGE / "static" / static.group(1)
    assert client.exists(), static.group(1)
    html = Template(snippet).render(Context({"order": {"pk": 5, "status": "new"}}))
    assert f'src="/static/{static.group(1)}"' in html
    inline = [s for s in re.findall(r"<script>(.*?)</script>", html, re.S) if s.strip()]
    assert len(inline) == 1, html
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    (tmp_path / "snippet.js").write_text(inline[0])
    (tmp_path / "harness.js").write_text(JS_HARNESS)
    result = subprocess.run(
        [node, "harness.js", str(client), str(tmp_path / "snippet.js")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "snippet ok" in result.stdout


# --- authorization and testing examples ---------------------------------------


def load_example(page_name: str, block: str) -> dict[str, object]:
    namespace: dict[str, object] = {"__name__": f"docs_example_{block.replace('-', '_')}"}
    exec(compile(named_code_block(page(page_name), block), block, "exec"), namespace)
    return namespace


@pytest.mark.django_db
def test_object_level_policy_example_admits_only_the_customer() -> None:
    can_subscribe = load_example("authorization.rst", "authorization-policy")["can_subscribe"]
    assert callable(can_subscribe)
    ada = User.objects.create_user("ada", email="ada@example.com")
    bob = User.objects.create_user("bob", email="bob@example.com")
    order = Order.objects.create(customer=Customer.objects.create(name="Ada", email=ada.email))
    group = f"order-{order.pk}"
    assert can_subscribe(ada, group, {}) is True
    assert can_subscribe(bob, group, {}) is False
    assert can_subscribe(AnonymousUser(), group, {}) is False
    assert can_subscribe(None, group, {}) is False
    assert can_subscribe(ada, f"order-{order.pk}-x", {}) is False
    # Other groups fall back to the library's default policy.
    assert can_subscribe(bob, "product-1", {}) is True
    assert can_subscribe(AnonymousUser(), "product-1", {}) is False
    assert can_subscribe(bob, "made-up-1", {}) is False


@pytest.mark.django_db
def test_testing_page_example_passes() -> None:
    example = load_example("testing.rst", "testing-example")
    tests = [value for name, value in example.items() if name.startswith("test_")]
    assert tests, "the testing page should show a test function"
    for test in tests:
        assert callable(test)
        test()


# --- packaging ----------------------------------------------------------------


def setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "setup.cfg", encoding="utf-8")
    return parser


def test_python_classifiers_start_at_python_requires() -> None:
    cfg = setup_cfg()
    floor = re.fullmatch(r">=\s*3\.(\d+)", cfg["options"]["python_requires"].strip())
    assert floor, "python_requires should be a plain lower bound"
    minors = sorted(
        int(m) for m in re.findall(r"Python :: 3\.(\d+)$", cfg["metadata"]["classifiers"], re.M)
    )
    assert minors, "no Python version classifiers"
    assert minors[0] == int(floor.group(1))
    assert minors == list(range(minors[0], minors[-1] + 1)), "a gap in the Python classifiers"


def test_required_extras_exist() -> None:
    extras = setup_cfg()["options.extras_require"]
    assert {"redis", "test", "docs", "demo"} <= set(extras)


def test_changelog_has_an_unreleased_section() -> None:
    changelog = (ROOT / "CHANGELOG.rst").read_text(encoding="utf-8")
    assert re.search(r"^Unreleased\n-+$", changelog, re.MULTILINE)
