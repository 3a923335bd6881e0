"""`python -m digitlab`: the `digitlab` command. A Ctrl-C before the command runs is one line and 130."""

import sys

try:
    from .cli import main
except KeyboardInterrupt:
    print("digitlab: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
