"""Small shared pieces: the top bar, a drawing that repaints only on change, a path prompt with
completion, an op-list suggester."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Button, Input, Label, Static

from . import startup


class Drawing(Static):
    """A Static for drawings redrawn from live data: ``show`` skips an unchanged drawing.

    Every ``update`` costs Textual a layout pass and a repaint (tens of milliseconds for a grid on a
    small machine); a live screen redraws ten times a second while most drawings stay the same, and
    a key press would queue behind those repaints.
    """

    def __init__(self, content: str | Text = "", **kwargs: object) -> None:
        super().__init__(content, **kwargs)  # type: ignore[arg-type]
        self._shown: str | Text = content
        self._extent = _extent(content)

    def show(self, content: str | Text) -> None:
        """Show ``content``; a layout pass only when its size (lines, widest line) changed."""
        if type(content) is type(self._shown) and content == self._shown:
            return
        extent = _extent(content)
        self.update(content, layout=extent != self._extent)
        self._shown, self._extent = content, extent


def _extent(content: str | Text) -> tuple[int, int]:
    lines = (content.plain if isinstance(content, Text) else content).split("\n")
    return len(lines), max(map(len, lines))


class PathSuggester(Suggester):
    """Completes the last part of a path from what is on disk (folders get a trailing /)."""

    def __init__(self, suffixes: tuple[str, ...] = ()) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.suffixes = suffixes

    async def get_suggestion(self, value: str) -> str | None:
        head, sep, tail = value.rpartition("/")
        folder = Path(head) if head else Path("/" if sep else ".")
        prefix = value[: len(value) - len(tail)]
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            return None
        for name in names:
            if not name.startswith(tail) or name == tail or name.startswith("."):
                continue
            is_dir = (folder / name).is_dir()
            if is_dir or not self.suffixes or name.endswith(self.suffixes):
                return f"{prefix}{name}{'/' if is_dir else ''}"
        return None


class OpListSuggester(Suggester):
    """Completes the last op name of a comma-separated op list (``space.normal``)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        head, _, tail = value.rpartition(",")
        tail = tail.strip()
        if not tail or startup.loading():  # (no op names before nasp is imported: a key never waits for torch)
            return None
        from nasp.ops import list_ops

        for name in list_ops():
            if name.startswith(tail) and name != tail:
                return f"{head}{',' if head else ''}{name}"
        return None


class PathDialog(ModalScreen[str | None]):
    """Asks for a path (tab completes from disk); dismisses with the path, or None on escape."""

    DEFAULT_CSS = """
    PathDialog { align: center middle; }
    PathDialog > Vertical { width: 76; max-width: 100%; height: auto; border: thick $accent; padding: 0 1;
                            background: $surface; }
    PathDialog Input { margin: 1 0 0 0; }
    PathDialog #hint { color: $text-muted; }
    PathDialog Horizontal { height: auto; align-horizontal: right; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str = "", hint: str = "", suffixes: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.hint = hint
        self.suffixes = suffixes

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text)
            yield Input(self.value, suggester=PathSuggester(self.suffixes), id="path")
            yield Static(self.hint or "enter: OK · right arrow: accept completion · escape: cancel", id="hint")
            with Horizontal():
                yield Button("OK", variant="primary", id="ok", compact=True)
                yield Label(" ")
                yield Button("Cancel", id="cancel", compact=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self.query_one(Input).value.strip() or None if event.button.id == "ok" else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class UnsavedDialog(ModalScreen[str | None]):
    """Leaving the genotype editor with unsaved edits: save them (as a new file), discard them, or stay."""

    DEFAULT_CSS = """
    UnsavedDialog { align: center middle; }
    UnsavedDialog > Vertical { width: 64; max-width: 100%; height: auto; border: thick $warning; padding: 0 1;
                               background: $surface; }
    UnsavedDialog Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "stay", "Stay"), Binding("s", "choose('save')", "Save"),
                                             Binding("d", "choose('discard')", "Discard")]

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"{self.label} has unsaved edits.")
            yield Static("s: save them as a new file · d: discard them · escape: stay in the editor", id="hint")
            with Horizontal():
                yield Button("Save…", variant="primary", id="save", compact=True)
                yield Label(" ")
                yield Button("Discard", variant="error", id="discard", compact=True)
                yield Label(" ")
                yield Button("Stay", id="stay", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "stay" else event.button.id)

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)

    def action_stay(self) -> None:
        self.dismiss(None)


class ChoiceDialog(ModalScreen[str | None]):
    """A question, what each answer does, and the answers as keys and buttons (``choices``: key, label, value);
    escape answers None (nothing happens)."""

    DEFAULT_CSS = """
    ChoiceDialog { align: center middle; }
    ChoiceDialog > Vertical { width: 76; max-width: 100%; height: auto; border: thick $accent; padding: 0 1;
                              background: $surface; }
    ChoiceDialog #details { margin: 1 0 0 0; }
    ChoiceDialog Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "answer", "Cancel")]

    def __init__(self, question: str, details: str, choices: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.question, self.details, self.choices = question, details, choices

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, id="question", markup=False)
            yield Static(self.details, id="details", markup=False)
            with Horizontal():
                for i, (key, label, value) in enumerate(self.choices):
                    yield Button(f"{label} ({key})", variant="primary" if i == 0 else "default", id=f"c-{value}",
                                 compact=True)
                    yield Label(" ")
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_key(self, event: events.Key) -> None:
        for key, _, value in self.choices:
            if event.key == key:
                event.stop()
                self.dismiss(value)
                return

    def on_button_pressed(self, event: Button.Pressed) -> None:
        bid = event.button.id or ""
        self.dismiss(bid.removeprefix("c-") if bid.startswith("c-") else None)

    def action_answer(self) -> None:
        self.dismiss(None)


NAV = [("setup", "F2", "setup"), ("live", "F3", "live"), ("runs", "F4", "runs"), ("genotype", "F5", "genotype")]


class NavBar(Static):
    """The top line: the screens by key (current one highlighted; click to switch) and what this one shows."""

    DEFAULT_CSS = """
    NavBar { dock: top; height: 1; background: $panel; }
    """

    def __init__(self, mode: str, subtitle: str = "") -> None:
        super().__init__()
        self.mode = mode
        self.subtitle = subtitle

    def on_mount(self) -> None:
        self.show(self.subtitle)

    def show(self, subtitle: str) -> None:
        self.subtitle = subtitle
        parts = ["[b] nasp [/b]"]
        for mode, key, label in NAV:
            style = "reverse b" if mode == self.mode else "dim"
            parts.append(f"[@click=app.switch_mode('{mode}')][{style}] {key} {label} [/{style}][/]")
        parts.append("[@click=app.help][dim] F1 help [/dim][/]")
        if subtitle:
            parts.append(f" [i]{escape(subtitle)}[/i]")
        self.update("".join(parts))
