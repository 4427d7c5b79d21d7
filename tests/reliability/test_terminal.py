"""Text from servers is never terminal markup (issue 21, item 5).

Rich reads ``[bold red]…[/]`` and ``[link=…]`` in a string as markup: a ``Location`` header
or an error message rendered colour and a clickable (OSC 8) link in the harvest summary and
in ``illhub sources``. Every outside string is now shown as it is, with control characters
made visible, and emoji codes stay text.
"""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from tests.conftest import run_cli
from tests.reliability.helpers import feed_source, harvest, items_for, rss, runs, write_registry
from tests.server import StubServer, ok, redirect

LOCATION = "javascript:[bold red]PWNED[/] [link=http://evil.example/]click[/link] :thumbs_up:"
#: The markup as it must appear, once the table's folding and borders are taken out.
NEEDLES = ("[boldred]PWNED[/]", "[link=http://evil.example/]click[/link]", ":thumbs_up:")


def squeezed(text: str) -> str:
    return re.sub(r"[\s│┃|]", "", text)


@pytest.fixture(scope="module")
def server():
    with StubServer("127.0.0.71") as s:
        yield s


@pytest.mark.parametrize("force_terminal", [False, True], ids=["pipe", "terminal"])
def test_server_text_is_shown_as_text_in_the_summary_and_in_sources(server, tmp_path, force_terminal):
    server.route("/feed.xml", ok(rss(items_for("fine", 2))))
    server.route("/moved.xml", redirect(LOCATION, 302))
    registry = write_registry(tmp_path / "registry.yaml", [feed_source("fine", server.url("/feed.xml")),
                                                           feed_source("moved", server.url("/moved.xml"))])
    db = tmp_path / "catalog.db"
    env = {"FORCE_COLOR": "1", "TERM": "xterm-256color"} if force_terminal else {"NO_COLOR": "1"}
    result = harvest(registry, db, env=env)
    assert result.returncode == 1
    assert LOCATION in runs(db)["moved"]["error"]  # stored as it came
    listing = run_cli("sources", "--registry", str(registry), "--db", str(db), env=env)
    assert listing.returncode == 0, listing.stderr
    for shown in (result.stdout, listing.stdout):
        for needle in NEEDLES:
            assert needle in squeezed(shown), shown
        assert "\x1b]8;" not in shown  # no OSC 8 hyperlink
        assert "👍" not in shown
    if force_terminal:
        assert "\x1b[" in result.stdout  # the terminal case did get styles: only ours


def test_control_characters_from_outside_are_made_visible():
    """An escape sequence in a server's text would reach the terminal as it is: Rich strips
    only a few control characters. plain() shows them."""
    from illhub.console import escape, plain

    hostile = "error \x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\ \x1b[2J\u202egnp.exe [red]x[/]"
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=200, emoji=False, highlight=False)  # as illhub.console
    console.print(plain(hostile))
    console.print(f"[bold]note:[/] {escape(hostile)}")
    shown = buffer.getvalue()
    assert "\x1b]8;" not in shown and "\x1b[2J" not in shown and "\u202e" not in shown
    assert shown.count("\\x1b]8;;http://evil.example/") == 2 and shown.count("\\u202e") == 2
    assert shown.count("[red]x[/]") == 2
