"""The one stand-in for anywidget's model in the view modules' front-end tests (as anywidget's own tests mount
a module in a plain page): its contract (get, set, on, off, save_changes, send) over a plain object, recording
what the view does.

`install` defines ``window.standInModel(values)`` in the page; a test's mount script calls it with the model's
initial values and gets the model to render with. It records ``window.sets`` (every ``[name, value]`` the view
set), ``window.saves`` (``save_changes`` calls) and ``window.sent`` (messages the view sent); ``window.pySet(name,
value)`` changes a value as Python would, and ``window.fire(event, ...args)`` fires an event (``"msg:custom"``
with a message and its buffers, as the widget answers a request). Like anywidget's model, a ``set`` notifies the
view's own ``change:<name>`` listeners too. The HTML export has its own stand-in, static/static_model.js, which
records nothing.
"""

from __future__ import annotations

STAND_IN_MODEL = """
(values) => {
  const handlers = {};
  const fire = (event, ...args) => (handlers[event] || []).forEach((f) => f(...args));
  window.sets = []; window.saves = 0; window.sent = []; window.fire = fire;
  window.pySet = (name, value) => { values[name] = value; fire("change:" + name); };
  return {
    get: (name) => values[name],
    set: (name, value) => { values[name] = value; window.sets.push([name, value]); fire("change:" + name); },
    on: (event, f) => { (handlers[event] = handlers[event] || []).push(f); },
    off: (event, f) => { handlers[event] = (handlers[event] || []).filter((g) => g !== f); },
    save_changes: () => { window.saves += 1; },
    send: (message) => { window.sent.push(message); },
  };
}
"""


def install(page) -> None:
    """Define ``window.standInModel`` in ``page`` (a Playwright page, after its content is set)."""
    page.evaluate(f"window.standInModel = {STAND_IN_MODEL}")
