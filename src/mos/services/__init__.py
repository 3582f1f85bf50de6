"""The rules of the service: plain Python, no Flask, no database driver."""
