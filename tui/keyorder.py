"""Keys in the order they were typed: each goes to the widget focused once the key before it has had its effect.

Textual hands a key to the widget focused when the app reads it from the terminal. Keys typed during a stall
(the app busy, the machine loaded) are read together, before the first has done anything: tab moves the focus
only when the focused widget has passed the tab up to the app's bindings, so the characters typed after it went
to the old field (issue 24: "keys typed during stalls land in the wrong field"). ``KeysInOrderApp`` holds a key
read while an earlier one is still on its way through the widgets, and lets it go when that one is done.
"""

from __future__ import annotations

import functools
from collections import deque
from typing import Any, TypeVar

from textual import events
from textual.app import App
from textual.message_pump import MessagePump

ReturnType = TypeVar("ReturnType")

# a key is let go after this long even if the one before it never came back (its widget was removed meanwhile)
KEY_WAIT_S = 1.0


class KeysInOrderApp(App[ReturnType]):
    """An App whose keys reach the widgets one at a time, each after the one before it is done with."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._key_in_flight: events.Key | None = None
        self._key_released: events.Key | None = None  # the held key posted again, on its way to on_event
        self._keys_held: deque[events.Key] = deque()

    async def on_event(self, event: events.Event) -> None:
        if not isinstance(event, events.Key) or event.is_forwarded:
            await super().on_event(event)  # (a key bubbling back up from the widgets is handled as always)
            return
        if event is not self._key_released and (self._key_in_flight is not None or self._key_released is not None
                                                or self._keys_held):
            self._keys_held.append(event)
            return
        self._key_released = None
        target = self.focused or self.screen
        await super().on_event(event)
        if event.is_forwarded:  # on its way through the widgets (a priority binding handled it otherwise)
            self._key_in_flight = event
            self.set_timer(KEY_WAIT_S, functools.partial(self._key_done, event))
            self._follow(event, target)
        else:
            self._release_next()

    def _follow(self, event: events.Key, node: MessagePump) -> None:
        """Once ``node`` has handled ``event`` (a callback queued behind it), see where it went."""
        if not node.call_later(self._key_passed, event, node):
            self._key_done(event)  # (the node is closed: the key goes no further)

    def _key_passed(self, event: events.Key, node: MessagePump) -> None:
        if event is not self._key_in_flight:
            return
        parent = node._parent
        if node is self or parent is None:
            self._key_done(event)  # the app's own bindings have had it (or it never came back up)
        elif event._stop_propagation and parent is not self:
            self._key_done(event)  # a widget took it
        else:
            # passed up (to the app too: its binding, e.g. tab's focus move, runs before this callback does)
            self._follow(event, parent)

    def _key_done(self, event: events.Key) -> None:
        if event is self._key_in_flight:
            self._key_in_flight = None
            self._release_next()

    def _release_next(self) -> None:
        if self._keys_held and self._key_in_flight is None and self._key_released is None:
            self._key_released = self._keys_held.popleft()
            self.post_message(self._key_released)
