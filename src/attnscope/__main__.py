"""``python -m attnscope``: the same command line as ``attnscope``."""

from .cli import app

app()
