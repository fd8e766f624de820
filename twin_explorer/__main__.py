"""``python -m twin_explorer`` is the same as the ``twin-explorer`` command."""

import sys

from twin_explorer.cli import main

if __name__ == "__main__":
    sys.exit(main())
