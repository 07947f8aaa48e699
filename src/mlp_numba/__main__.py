"""``python -m mlp_numba``: the ``mlp-numba`` command line."""

from .cli import main

raise SystemExit(main())
