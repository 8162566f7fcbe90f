"""``python -m monitor``: the ``facemonitor`` command line (monitor.cli.main)."""

import sys

from monitor.cli.main import main

sys.exit(main())
