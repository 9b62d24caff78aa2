"""The quickstart (docs/quickstart.rst) works as printed.

The slow test builds the tutorial's project in a temporary directory from
the page's literal blocks: it runs the console commands (``django-admin
startproject``, ``startapp``, ``makemigrations``, ``migrate``,
``createsuperuser``), writes every block whose caption names a file to that
file (appending where the caption says "at the end"), then, in a script run
in the project:

* logs in through the tutorial's login page and loads both pages;
* opens a WebSocket to the project's ``asgi.py`` with the session cookie and
  subscribes to the groups the pages' ``{% rohrpost_client %}`` tags name;
* adds and changes an order through the admin in that process: the list
  page's group and the order page's group get the frames;
* runs the ``manage.py shell`` lines in a second process: with Redis (the
  tutorial's Redis settings) the change arrives; with the in-memory layer it
  does not, and the shell prints the library's warning instead.

The only things added to the pasted settings are test isolation: a Redis
prefix of its own and the Redis address from ``REDIS_URL``.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from django.template import engines

from tests import services

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "docs" / "quickstart.rst"
PASSWORD = "tutorial-Pass-1"


class Block:
    def __init__(self, name: str, language: str, caption: str | None, body: str) -> None:
        self.name = name
        self.language = language
        self.caption = caption
        self.body = body


def blocks(text: str | None = None) -> dict[str, Block]:
    """Every ``.. code-block::`` with a ``:name:``, by name."""
    lines = (text if text is not None else QUICKSTART.read_text(encoding="utf-8")).splitlines()
    found: dict[str, Block] = {}
    for index, line in enumerate(lines):
        start = re.match(r"^\.\. code-block:: (\S+)\s*$", line)
        if not start:
            continue
        options: dict[str, str] = {}
        body: list[str] = []
        in_options = True
        for following in lines[index + 1 :]:
            if following.strip() and not following.startswith("   "):
                break
            option = re.match(r"^   :(\w+): ?(.*)$", following)
            if in_options and option:
                options[option.group(1)] = option.group(2).strip()
                continue
            if in_options and not following.strip():
                in_options = False
                continue
            in_options = False
            body.append(following)
        if "name" in options:
            code = textwrap.dedent("\n".join(body)).strip("\n") + "\n"
            name, caption = options["name"], options.get("caption")
            found[name] = Block(name, start.group(1), caption, code)
    return found


def console_commands(block: Block) -> list[list[str]]:
    return [shlex.split(line[2:]) for line in block.body.splitlines() if line.startswith("$ ")]


# --- fast checks of the page's blocks -----------------------------------------

FILE_BLOCKS = (
    "tutorial-models",
    "tutorial-admin",
    "tutorial-settings",
    "tutorial-asgi",
    "tutorial-views",
    "tutorial-urls",
    "tutorial-login-template",
    "tutorial-detail-template",
    "tutorial-list-template",
    "tutorial-redis-settings",
)


def test_every_file_block_names_its_file_and_parses() -> None:
    found = blocks()
    for name in FILE_BLOCKS:
        block = found[name]
        assert block.caption, f"{name} has no caption naming its file"
        if block.language == "python":
            ast.parse(block.body, filename=name)
        else:
            engines["django"].from_string(block.body)


def test_the_settings_block_installs_everything_the_tutorial_uses() -> None:
    namespace: dict[str, object] = {"INSTALLED_APPS": ["django.contrib.admin"]}
    exec(compile(blocks()["tutorial-settings"].body, "tutorial-settings", "exec"), namespace)
    apps = namespace["INSTALLED_APPS"]
    assert isinstance(apps, list)
    assert apps[0] == "daphne"
    assert {"channels", "rohrpost_signals", "shop"} <= set(apps)
    assert {"ROHRPOST", "CHANNEL_LAYERS", "ASGI_APPLICATION"} <= set(namespace)


def test_the_readme_routing_is_the_tutorials() -> None:
    readme = blocks((ROOT / "README.rst").read_text(encoding="utf-8"))
    assert readme["readme-asgi"].body == blocks()["tutorial-asgi"].body


# --- the whole tutorial -------------------------------------------------------

#: Copied into the tutorial's project and run there.
TUTORIAL_CLIENT = Path(__file__).resolve().parent / "tutorial" / "client.py"


def run(command: list[str], cwd: Path, env: dict[str, str], stdin: str | None = None) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def isolated_env() -> dict[str, str]:
    # Nothing from the test project: the tutorial's project stands alone.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "RPS_", "REDIS_")) and key != "PYTHONPATH"
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


def build_project(workdir: Path, layer: str) -> tuple[Path, dict[str, str]]:
    """Follow the tutorial's steps in ``workdir``; return the project directory and env."""
    found = blocks()
    env = isolated_env()
    bin_dir = Path(sys.executable).parent
    cwd = workdir
    steps = console_commands(found["tutorial-startproject"]) + console_commands(
        found["tutorial-run"]
    )
    for command in steps:
        program, *args = command
        if program == "cd":
            cwd = cwd / args[0]
            continue
        if args[-1:] == ["runserver"]:
            continue  # the script below serves the project in-process
        if args[-1:] == ["createsuperuser"]:
            args += ["--noinput", "--username", "ada", "--email", "ada@example.com"]
            env = {**env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD}
        argv = [sys.executable, *args] if program == "python" else [str(bin_dir / program), *args]
        if args[-2:] == ["makemigrations", "shop"]:
            # The files the tutorial writes before it runs anything.
            write_files(cwd, found, layer)
        run(argv, cwd, env)
    return cwd, env


def write_files(project: Path, found: dict[str, Block], layer: str) -> None:
    names = [name for name in FILE_BLOCKS if name != "tutorial-redis-settings"]
    if layer == "redis":
        names.append("tutorial-redis-settings")
    for name in names:
        block = found[name]
        assert block.caption
        relative, _, how = block.caption.partition(" ")
        path = project / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if how == "(at the end)":
            with path.open("a", encoding="utf-8") as settings_file:
                settings_file.write("\n" + block.body)
        else:
            assert not how, f"unknown caption {block.caption!r}"
            path.write_text(block.body, encoding="utf-8")
    if layer == "redis":
        # Test isolation only: the shared Redis, under a prefix of its own.
        with (project / "mysite" / "settings.py").open("a", encoding="utf-8") as settings_file:
            settings_file.write(
                "\n# --- added by tests/test_tutorial.py ---\n"
                "CONFIG = CHANNEL_LAYERS['default']['CONFIG']\n"
                f"CONFIG['hosts'][0]['address'] = {services.REDIS_URL!r}\n"
                f"CONFIG['prefix'] = 'rps-tutorial-{uuid.uuid4().hex[:10]}'\n"
            )


def shell_input(block: Block) -> str:
    return "".join(line[4:] + "\n" for line in block.body.splitlines() if line.startswith(">>> "))


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
def test_the_tutorial_works_as_printed(tmp_path: Path, layer: str) -> None:
    if layer == "redis":
        services.need_redis()
    project, env = build_project(tmp_path, layer)
    shutil.copyfile(TUTORIAL_CLIENT, project / "tutorial_client.py")
    shell = shell_input(blocks()["tutorial-shell"])
    output = run([sys.executable, "tutorial_client.py", layer, PASSWORD, shell], project, env)
    assert "in-process ok" in output
    assert ("second process ok" if layer == "redis" else "second process warned") in output
