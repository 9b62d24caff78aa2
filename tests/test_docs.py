"""The docs must not drift from the code.

* every ``ROHRPOST`` key the code reads, every model option and every system
  check id is documented in ``docs/settings.rst`` (with the right default);
* every error text the server can send is on the protocol page;
* the code examples of the authorization and testing pages run (the
  quickstart has its own test, tests/test_tutorial.py);
* the packaging metadata agrees with itself.
"""

from __future__ import annotations

import ast
import configparser
import json
import re
import textwrap
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser, Permission, User

from rohrpost_signals.conf import DEFAULTS, MODEL_OPTIONS
from shop.models import Customer, Order, Product

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
    return {
        p.relative_to(PACKAGE).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(PACKAGE.rglob("*.py"))
    }


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
    for name in (
        "protocols/rohrpost/frames.py",
        "core/subscribing.py",
        "protocols/rohrpost/consumers.py",
        "core/subscriptions.py",
        "protocols/rohrpost/main.py",
        "protocols/rohrpost/handlers.py",
        "core/limits.py",
    ):
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
    # Other groups fall back to the library's default policy: the view permission.
    product = f"product-{Product.objects.create(name='p').pk}"
    assert can_subscribe(bob, product, {}) is False
    bob.user_permissions.add(Permission.objects.get(codename="view_product"))
    bob = User.objects.get(pk=bob.pk)  # permissions are cached per instance
    assert can_subscribe(bob, product, {}) is True
    assert can_subscribe(AnonymousUser(), product, {}) is False
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


def test_project_urls_are_declared_and_agree() -> None:
    metadata = setup_cfg()["metadata"]
    urls = dict(
        line.split("=", 1) for line in metadata["project_urls"].strip().splitlines() if "=" in line
    )
    urls = {key.strip(): value.strip() for key, value in urls.items()}
    assert {"Documentation", "Source", "Issues", "Changelog"} <= set(urls)
    assert all(url.startswith("https://") for url in urls.values()), urls
    source = urls["Source"]
    assert metadata["url"].strip() == source
    package = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    assert package["repository"]["url"] == f"git+{source}.git"
    assert package["bugs"] == urls["Issues"]
    # The README is shown on PyPI and npm too: its image must not be relative.
    images = re.findall(r"^\.\. image:: (\S+)", (ROOT / "README.rst").read_text(), re.MULTILINE)
    assert images, "the README shows the demo"
    for image in images:
        assert image.startswith(source.replace("github.com", "raw.githubusercontent.com") + "/")
        assert (ROOT / image.split("/main/", 1)[1]).exists(), image


def test_the_npm_package_has_the_python_packages_version() -> None:
    import rohrpost_signals

    package = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    assert package["version"] == rohrpost_signals.__version__
    for path in package["files"]:
        assert (ROOT / path).exists(), path


def test_every_error_code_is_on_the_protocol_page() -> None:
    from rohrpost_signals.exceptions import ERROR_CODES

    text = page("protocol.rst")
    assert [code for code in sorted(ERROR_CODES) if f"``{code}``" not in text] == []


def test_example_update_frames_carry_seq_and_epoch() -> None:
    # What a reader copies into a client must look like what the server sends.
    pages = {p.name: p.read_text(encoding="utf-8") for p in DOCS.glob("*.rst")}
    pages["README.rst"] = (ROOT / "README.rst").read_text(encoding="utf-8")
    found = 0
    for name, text in pages.items():
        blocks = re.findall(r"^\.\. code-block:: json\n\n((?:   .*\n|\n)+)", text, re.M)
        body = "\n\n".join(blocks)
        for match in re.finditer(r'"type": "subscription-update",(.*?)(?=\{"id"|\n\n)', body, re.S):
            found += 1
            frame = match.group(1)
            assert '"seq"' in frame, f"{name}: an example update without seq: {frame}"
            assert '"epoch"' in frame, f"{name}: an example update without epoch: {frame}"
    assert found >= 5
