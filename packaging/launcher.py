"""The frozen app's entry script: exactly the ``twin-explorer`` command.

The same executable opens the window, runs every subcommand, and is what the app starts
as its local hub (``twin-explorer hub``, see twin_explorer.service.local_hub).
"""

import sys

from twin_explorer.cli import main

if __name__ == "__main__":
    sys.exit(main())
