"""The help screen: every key of every screen, read from the screens' BINDINGS so it never drifts."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

MOUSE = ("Fields: tab / shift+tab move between them; choice fields open with enter (or a click), arrows move, "
         "enter picks; ctrl+a / ctrl+k go to the start / clear to the end of a text field; right arrow accepts a "
         "suggested completion.\n"
         "Mouse: click a screen name in the top bar, a tab, a row, a button or a key in the footer; scroll with the wheel.")


def key_label(key: str) -> str:
    names = {"question_mark": "?", "space": "space", "left_square_bracket": "[", "right_square_bracket": "]",
             "escape": "esc"}
    return ", ".join(names.get(k.strip(), k.strip()) for k in key.split(","))


def bindings_table(sections: list[tuple[str, list[BindingType]]]) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False, expand=False)
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("action")
    for title, bindings in sections:
        table.add_row(Text(title, style="bold underline"), "")
        seen = set()
        for b in bindings:
            if not isinstance(b, Binding) or not b.description or b.description in seen:
                continue
            seen.add(b.description)
            keys = [key_label(x.key) for x in bindings if isinstance(x, Binding) and x.description == b.description]
            table.add_row(" / ".join(keys), b.description)
        table.add_row("", "")
    return table


class HelpScreen(ModalScreen[None]):
    """All keys, grouped by screen (escape, q or F1 closes)."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 100%; max-width: 100; height: 100%; border: thick $accent; background: $surface;
                                  padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,f1,question_mark", "close", "Close help")]

    def __init__(self, sections: list[tuple[str, list[BindingType]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "nasp-tui keys (escape closes)"
            yield Static(bindings_table(self.sections))
            yield Static(MOUSE)

    def action_close(self) -> None:
        self.dismiss(None)
