"""min-object-storage: a small, self-hosted object store with a REST API."""

__version__ = "0.1.0"
