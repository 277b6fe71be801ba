"""`python -m nasp`: the `nasp` command (how nasp-tui starts a search in its own process)."""

from nasp.cli.main import main
from nasp.distributed import exit_process

exit_process(main())
