"""``python -m cms_mock``: the same as the ``cms-mock`` command."""

import sys

from cms_mock.cli import main

sys.exit(main())
