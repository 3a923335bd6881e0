"""`python -m digitlab`: the `digitlab` command. A Ctrl-C before the command runs is one line and 130."""

import sys

try:
    from .cli import main
except KeyboardInterrupt:
    print("digitlab: interrupted", file=sys.stderr)
    exec("")  # CPython would otherwise exit by SIGINT (-2), not 130: see cli._forget_the_interrupt
    sys.exit(130)

sys.exit(main())
