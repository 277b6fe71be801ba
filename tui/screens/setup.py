"""Run setup: a form generated from the RunConfig schema, checked like the CLI on every change."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Footer, Input, Label, Select, Static

from nasp.errors import NaspError

from .. import configform, startup
from ..configform import FieldSpec
from ..widgets import NavBar, OpListSuggester, PathDialog


def _wid(key: str) -> str:
    return "f-" + key.replace(".", "-")


LOADING = "… loading nasp (torch): the choice lists, the algorithm's options and the check follow"


class SetupScreen(Screen[None]):
    """The run form; ``ctrl+r`` starts the search shown by the command line at the bottom."""

    DEFAULT_CSS = """
    SetupScreen #form { height: 1fr; padding: 0 1; }
    SetupScreen .section { text-style: bold; color: $accent; margin-top: 1; }
    SetupScreen .row { height: 1; }
    SetupScreen .row Label { width: 26; }
    SetupScreen .row Input, SetupScreen .row Select { width: 1fr; }
    SetupScreen #field-error { color: $error; padding-left: 26; display: none; height: auto; max-height: 3; }
    SetupScreen #field-error.-shown { display: block; }
    SetupScreen .row.-bad Label { color: $error; text-style: bold; }
    SetupScreen #buttons { height: 1; margin-top: 1; }
    SetupScreen #buttons Button { margin-right: 2; }
    SetupScreen #fieldhelp { height: auto; max-height: 2; padding: 0 1; color: $text-muted; }
    SetupScreen #problem { height: auto; max-height: 3; padding: 0 1; color: $error; }
    SetupScreen #problem.-ok { color: $success; }
    SetupScreen #cmdline { height: auto; padding: 0 1; background: $boost; }
    SetupScreen #options-loading { height: 1; padding-left: 26; color: $text-muted; }
    SetupScreen #problem.-loading { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "start", "Start search", priority=True),
        Binding("ctrl+o", "load", "Open config", priority=True),
        Binding("ctrl+s", "save", "Save config", priority=True),
        Binding("ctrl+d", "defaults", "Defaults", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        # nasp's registries are still being imported (startup.py): the form is the schema's until they are
        self._loading = startup.loading()
        self.values: dict[str, str | bool] = configform.default_values()
        self.fields = self._form_fields()
        self.checked = configform.Checked(None)
        self.config_path: str | None = None
        self._error_under: str | None = None

    # --- layout -------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield NavBar("setup", "run setup")
        with VerticalScroll(id="form"):
            section = None
            for spec in self.fields:
                if spec.section != section:
                    section = spec.section
                    yield Label(section, classes="section")
                yield self._row(spec)
                if spec.key == "algorithm.name" and self._loading:  # its options come with the registry
                    yield Static("… loading the algorithm's options", id="options-loading")
            yield Static("", classes="error", id="field-error", markup=False)  # moved under the bad field
            with Horizontal(id="buttons"):
                yield Button("Start search (ctrl+r)", id="start", variant="primary", compact=True)
                yield Button("Open config (ctrl+o)", id="load", compact=True)
                yield Button("Save config (ctrl+s)", id="save", compact=True)
        yield Static("", id="fieldhelp")
        yield Static("", id="problem", markup=False)
        yield Static("", id="cmdline", markup=False)
        yield Footer(show_command_palette=False)

    def _row(self, spec: FieldSpec) -> Horizontal:
        return Horizontal(Label(spec.key), self._widget(spec), classes="row", id=f"row-{_wid(spec.key)}")

    def _form_fields(self) -> list[FieldSpec]:
        """The rows to show: while nasp's registries load, without the algorithm's options (not known yet)."""
        fields = configform.form_fields(values=self.values)
        if self._loading:
            fields = [f for f in fields if not configform.is_algorithm_option(f.key)]
        return fields

    def _sync_rows(self) -> None:
        """Show the chosen algorithm's own keys (a plugin's once it is loaded): rows of keys that no longer
        apply go, rows of new ones are mounted after the row before them."""
        fields = self._form_fields()
        for spec in fields:
            self.values.setdefault(spec.key, configform.format_value(spec.default))
        old = {f.key: f for f in self.fields}
        keys = [f.key for f in fields]
        if list(old) == keys:
            return
        for key in old:
            if key not in keys:
                if self._error_under == key:
                    self._error_under = None
                self.query_one(f"#row-{_wid(key)}").remove()
        form = self.query_one("#form")
        for i, spec in enumerate(fields):
            if spec.key not in old:
                form.mount(self._row(spec), after=self.query_one(f"#row-{_wid(fields[i - 1].key)}"))
        self.fields = [old.get(f.key, f) for f in fields]

    def _widget(self, spec: FieldSpec) -> Widget:
        value = self.values[spec.key]
        tip = spec.description
        if spec.kind == "bool":
            return Select([("true", True), ("false", False)], value=value, allow_blank=False, compact=True,
                          id=_wid(spec.key), tooltip=tip)
        if spec.kind == "select":
            options = [(c, c) for c in spec.choices]
            if value and value not in spec.choices:
                options.append((str(value), value))
            return Select(options, value=value if value != "" else Select.NULL, allow_blank=spec.optional,
                          prompt="(default)", compact=True, id=_wid(spec.key), tooltip=tip)
        suggester = OpListSuggester() if spec.kind == "oplist" else None
        placeholder = "(default)" if spec.default is None else ""
        if spec.kind == "oplist":
            placeholder = "the space's ops (comma-separated op names to replace them)"
        return Input(str(value), compact=True, id=_wid(spec.key), tooltip=tip, suggester=suggester,
                     placeholder=placeholder)

    def on_mount(self) -> None:
        self.refresh_check()
        self.query_one(f"#{_wid(self.fields[0].key)}").focus()
        if self._loading:
            self._loaded_timer = self.set_interval(0.1, self._check_loaded)

    def _check_loaded(self) -> None:
        if not startup.loading():
            self._loaded_timer.stop()
            self.refresh_check()  # (it shows the registries' part first)

    # --- values -------------------------------------------------------------------------------
    def on_input_changed(self, event: Input.Changed) -> None:
        key = self._key_of(event.input)
        if key is not None:
            self.values[key] = event.value
            self.refresh_check()

    def on_select_changed(self, event: Select.Changed) -> None:
        key = self._key_of(event.select)
        if key is not None:
            value = event.value
            value = "" if value is Select.NULL else value
            if key == "algorithm.name" and value and value != self.values.get(key):
                self.values = configform.switch_algorithm(self.values, str(value))
                self._sync_rows()
                self._show_values({k for k in self.values if k.startswith("algorithm.") and k != key})
            self.values[key] = value  # type: ignore[assignment]
            self.refresh_check()

    def _key_of(self, widget: Widget) -> str | None:
        for spec in self.fields:
            if widget.id == _wid(spec.key):
                return spec.key
        return None

    def on_descendant_focus(self) -> None:
        focused = self.focused  # (not the event's widget: focus events of quick moves arrive late)
        key = self._key_of(focused) if focused is not None else None
        spec = next((f for f in self.fields if f.key == key), None)
        help_text = Text()
        if spec is not None:
            help_text.append(f"{spec.key}: ", style="bold")
            help_text.append(spec.description)
            default = configform.format_value(spec.default)
            help_text.append(f"  (default {default if default != '' else 'none'})", style="dim")
        self.query_one("#fieldhelp", Static).update(help_text)

    def set_values(self, values: dict[str, str | bool]) -> None:
        """Show ``values`` in the widgets (a loaded config, the defaults)."""
        self.values = dict(values)
        self._sync_rows()
        self._show_values()
        self.refresh_check()

    def _show_values(self, keys: set[str] | None = None) -> None:
        """Put ``self.values`` (of ``keys``, default all) in their widgets without change events."""
        for spec in self.fields:
            found = self.query(f"#{_wid(spec.key)}")
            if (keys is not None and spec.key not in keys) or not found:
                continue  # (a row being mounted is built with its value)
            widget = found.first()
            value = self.values[spec.key]
            with widget.prevent(Input.Changed, Select.Changed):
                if isinstance(widget, Select):
                    self._refresh_choices(spec, widget)
                    widget.value = Select.NULL if value == "" else value
                elif isinstance(widget, Input):
                    widget.value = str(value)

    def _refresh_choices(self, spec: FieldSpec, widget: Select[Any]) -> None:
        if spec.key not in configform.REGISTRY_KEYS:
            return
        choices = configform.registry_choices(spec.key) or []  # (while nasp loads: the value alone)
        value = self.values[spec.key]
        if value and value not in choices:
            choices = [*choices, str(value)]
        if choices != spec.choices:
            spec.choices = choices
            with widget.prevent(Select.Changed):
                widget.set_options([(c, c) for c in choices])
                widget.value = value if value else Select.NULL

    # --- checking -----------------------------------------------------------------------------
    def overrides(self) -> list[str]:
        return configform.to_overrides(self.values)

    def registries_loaded(self) -> None:
        """nasp's registries are imported: the algorithm's options appear under its name and the choice lists fill
        in. What was typed meanwhile stays, and so does the focus (new rows never take it)."""
        self._loading = False
        for note in self.query("#options-loading"):
            note.remove()
        self._sync_rows()
        for spec in self.fields:
            found = self.query(f"#{_wid(spec.key)}")
            if spec.kind == "select" and found:
                self._refresh_choices(spec, found.first(Select))

    def refresh_check(self) -> configform.Checked:
        """Check the form like `nasp run` would and show the outcome inline and in the command line (while nasp's
        registries load, the command line and a note that the check follows)."""
        if self._loading and not startup.loading():
            self.registries_loaded()
        overrides = self.overrides()
        if self._loading:
            problem = self.query_one("#problem", Static)
            problem.set_classes("-loading")
            problem.update(LOADING)
            self.query_one("#cmdline", Static).update("$ " + configform.command_line(overrides))
            return self.checked
        self.query_one("#problem", Static).remove_class("-loading")
        self.checked = configform.check(overrides)
        self._sync_rows()  # a plugin named in the form may have brought the chosen algorithm's keys
        bad = self.checked.key
        for spec in self.fields:
            self.query_one(f"#row-{_wid(spec.key)}").set_class(spec.key == bad, "-bad")
        err = self.query_one("#field-error", Static)
        err.set_class(bad is not None, "-shown")
        # under the field what is wrong with it (its key is beside it), below the form the whole message: each
        # wraps to at most three lines (its tooltip holds all of it)
        err.update(configform.field_message(self.checked.error, bad) if bad is not None else "")
        if bad is not None and self._error_under != bad:
            self._error_under = bad
            self.query_one("#form").move_child(err, after=self.query_one(f"#row-{_wid(bad)}"))
        if bad is not None:
            self.call_after_refresh(err.scroll_visible, animate=False)
        if self.checked.error is None:
            # plugins may have registered more algorithms, spaces or datasets: offer them
            for spec in self.fields:
                found = self.query(f"#{_wid(spec.key)}")
                if spec.kind == "select" and found:  # (a row being mounted has its choices already)
                    self._refresh_choices(spec, found.first(Select))
        problem = self.query_one("#problem", Static)
        problem.set_class(self.checked.error is None, "-ok")
        problem.update(f"✗ {self.checked.error}" if self.checked.error else "✓ valid config")
        problem.tooltip = self.checked.error
        self.query_one("#cmdline", Static).update("$ " + configform.command_line(overrides))
        return self.checked

    # --- actions ------------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {"start": self.action_start, "load": self.action_load, "save": self.action_save}
        if event.button.id in actions:
            actions[event.button.id]()

    def action_start(self) -> None:
        startup.wait()  # (the check needs nasp's registries: pressed while they load, this waits for them)
        checked = self.refresh_check()
        if checked.config is None:
            self.notify(checked.error or "invalid config", title="cannot start", severity="error")
            if checked.key:
                self.query_one(f"#{_wid(checked.key)}").focus()
            return
        self.app.start_search(checked.config, self.overrides())  # type: ignore[attr-defined]

    def action_defaults(self) -> None:
        self.set_values(configform.default_values())
        self.notify("form reset to the defaults")

    def action_load(self) -> None:
        def done(path: str | None) -> None:
            if path:
                self.load_file(path)

        self.app.push_screen(PathDialog("Open a YAML config (as nasp run --config takes)", self.config_path or "",
                                        suffixes=(".yaml", ".yml")), done)

    def load_file(self, path: str) -> bool:
        try:
            cfg = configform.load_config_file(path)
        except NaspError as exc:
            self.notify(str(exc), title="cannot open config", severity="error")
            return False
        self.config_path = path
        self.set_values(configform.values_of(cfg))
        self.notify(f"loaded {path}")
        return True

    def action_save(self) -> None:
        startup.wait()
        checked = self.refresh_check()
        if checked.config is None:
            self.notify(checked.error or "invalid config", title="fix the config first", severity="error")
            return
        cfg = checked.config

        def done(path: str | None) -> None:
            if path:
                try:
                    configform.save_config_file(cfg, path)
                except OSError as exc:
                    self.notify(str(exc), title="cannot save", severity="error")
                    return
                self.config_path = path
                self.notify(f"saved {path}; run it with: nasp run --config {Path(path)}")

        self.app.push_screen(PathDialog("Save the config as YAML", self.config_path or "run.yaml",
                                        suffixes=(".yaml", ".yml")), done)
