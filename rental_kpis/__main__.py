"""``python -m rental_kpis``: the ``rental-kpis`` command, for when its script is not on PATH."""

import sys

from rental_kpis.cli import main

if __name__ == "__main__":
    sys.exit(main())
