"""Hostile: ends the worker process at import, before any function can be called."""
import os

os._exit(0)
