"""`python -m nasp`: the `nasp` command (how nasp-tui starts a search in its own process)."""

import sys

from nasp.cli.main import main

sys.exit(main())
