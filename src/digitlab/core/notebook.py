"""Where are we running? Jupyter shows HTML and figures inline; a terminal gets text.

IPython is imported only when it already is (a kernel or an IPython shell imported it), so
scripts and the CLI never pay for it.
"""

from __future__ import annotations

import sys


def in_kernel() -> bool:
    """True inside a Jupyter (IPython) kernel: the place where HTML and inline figures show."""
    if "IPython" not in sys.modules:
        return False
    get_ipython = getattr(sys.modules["IPython"], "get_ipython", None)
    shell = get_ipython() if get_ipython else None
    return getattr(shell, "kernel", None) is not None  # terminal IPython has a shell but no kernel
