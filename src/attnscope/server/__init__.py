"""The explorer app's server: a typed JSON API (FastAPI) over the models and corpora configured at start.

>>> from attnscope.server import AppState, create_app
>>> app = create_app(AppState.configure(["default"]))   # serve with uvicorn.run(app)
"""

from .app import create_app
from .corpora import Corpus
from .state import AppState, Limits

__all__ = ["AppState", "Corpus", "Limits", "create_app"]
