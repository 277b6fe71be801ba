"""nasp-tui: a terminal app to configure a search, watch Ā evolve live, browse runs and edit genotypes.

The logic (config form, live state, run folders, text charts) lives in plain modules so it can be
tested without a terminal; ``tui.screens`` holds the Textual screens and ``tui.app`` the app.
"""
