"""feedsvc: publish folders of Markdown notes as RSS, Atom and JSON feeds."""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
