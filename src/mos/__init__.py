"""min-object-storage: a small, self-hosted object store with a REST API."""

import logging

__version__ = "0.1.0"

# A library stays quiet unless the program using it configures logging (`mos serve` does).
logging.getLogger("mos").addHandler(logging.NullHandler())
