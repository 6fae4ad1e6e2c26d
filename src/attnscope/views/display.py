"""Where a view is displayed: a BertViz-style call shows its view where it is made, once.

BertViz's ``head_view``, ``model_view`` and ``neuron_view.show`` display their view themselves (with
``html_action="view"``, the default) and return None, so a call inside a helper function, in a loop over
layers, or followed by another statement still shows its view. Called with BertViz's arguments,
attnscope's view functions do the same (`present`), but return the widget, so that ``view.selection``
still works. Returned as the cell's value as well, that widget would be shown a second time by IPython's
displayhook; `repeated_as_cell_value` tells when to skip that one display, and only that one: an explicit
``display(view)``, or the view as the value of a later cell, shows it again.

attnscope's own API (a `Capture`, or a `ModelHandle` and text) keeps the usual notebook behaviour: the
widget is returned and shows where it is a cell's value. Outside IPython (a plain script) nothing is
displayed or printed.
"""

from __future__ import annotations

import sys
import weakref
from types import FrameType
from typing import Any


def shell() -> Any:
    """The running IPython shell (a Jupyter kernel, the IPython terminal), or None in a plain interpreter."""
    ipython = sys.modules.get("IPython")  # never imported here: a script that did not import it has no shell
    return ipython.get_ipython() if ipython is not None else None


def present(view: Any, html_action: str, bertviz_style: bool) -> Any:
    """What a view function does with the ``view`` it built, and returns it.

    A BertViz-style call (``bertviz_style``) with ``html_action="view"`` displays the view now, where it
    is called, when an IPython shell runs it, and remembers the cell run that displayed it; anything else
    (attnscope's own API, ``html_action="return"``, a plain script) displays nothing here.
    """
    if not (bertviz_style and html_action == "view"):
        return view
    ipython = shell()
    if ipython is None:
        return view
    from IPython.display import display

    display(view)
    run = getattr(ipython.displayhook, "exec_result", None)  # the ExecutionResult of the cell now running
    view._attnscope_displayed_in = weakref.ref(run) if run is not None else None
    return view


def repeated_as_cell_value(view: Any) -> bool:
    """Whether IPython's displayhook is now showing ``view`` as the value of the very cell run whose
    BertViz-style call already displayed it (`present`): the one display to skip.

    The displayhook (``DisplayHook.__call__(result)``) formats its ``result`` through the display
    formatter, which looks up ``_ipython_display_``; ``display(view)`` reaches the same formatter without
    the displayhook. So the call stack tells the two apart: a displayhook frame whose ``result`` is this
    very view.
    """
    displayed = getattr(view, "_attnscope_displayed_in", None)
    ipython = shell()
    if displayed is None or ipython is None:
        return False
    run = getattr(ipython.displayhook, "exec_result", None)
    if run is None or displayed() is not run:
        return False
    from IPython.core.displayhook import DisplayHook

    hooks = {DisplayHook.__call__.__code__, type(ipython.displayhook).__call__.__code__}
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code in hooks:
            first = frame.f_code.co_varnames[1]  # the value shown: DisplayHook.__call__(self, result)
            return frame.f_locals.get(first) is view
        frame = frame.f_back
    return False


def already_displayed() -> None:
    """``_ipython_display_`` of a view the displayhook would repeat: shows nothing."""
