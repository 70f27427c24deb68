"""py-header-rewrite: ``header-rewrite`` (plugins/header-rewrite) in Python, on the Sluice SDK.

Changes headers on the way to the backend and on the way back. Settings::

    {"request":  {"set": {"X-Api-Key": "k"}, "remove": ["Cookie"]},
     "response": {"set": {"X-Served-By": "sluice"}, "remove": ["Server"]}}

Both parts optional; removals run before the sets. Hooks mode: ``on_request`` always,
``on_response`` only when a ``response`` part is given, so the gateway makes the backend call
itself and streams the answer through when there is nothing to change on it.
"""

import sluice_plugin as sp

NAME = "header-rewrite"  # the messages name the plugin as the Rust example does


def _rules(part: str, value):
    """(set pairs in order, names to remove) from one part of the settings."""
    if value is None:
        return [], []
    if not isinstance(value, dict):
        raise ValueError(f"{NAME}: invalid settings: {part} must be an object")
    for key in value:
        if key not in ("set", "remove"):
            raise ValueError(
                f"{NAME}: invalid settings: unknown field `{key}` in {part}, expected `set` or `remove`"
            )
    set_ = value.get("set", {})
    if not isinstance(set_, dict):
        raise ValueError(f"{NAME}: invalid settings: {part}.set must be an object")
    pairs = []
    for name, text in set_.items():
        if not isinstance(text, str):
            raise ValueError(f"{NAME}: {part}.set.{name} must be a string")
        pairs.append((name, text))
    remove = value.get("remove", [])
    if not isinstance(remove, list) or not all(isinstance(n, str) for n in remove):
        raise ValueError(f"{NAME}: invalid settings: {part}.remove must be a list of strings")
    return pairs, remove


def _apply(message, rules) -> None:
    pairs, remove = rules
    for name in remove:
        message.remove_header(name)
    for name, value in pairs:
        message.set_header(name, value)


class HeaderRewrite(sp.Plugin):
    HOOKS = sp.Hooks.ON_REQUEST

    def __init__(self, settings):
        if not isinstance(settings, dict):
            raise ValueError(f"{NAME}: invalid settings: expected an object")
        for key in settings:
            if key not in ("request", "response"):
                raise ValueError(
                    f"{NAME}: invalid settings: unknown field `{key}`, expected `request` or `response`"
                )
        self.request = _rules("request", settings.get("request"))
        response = settings.get("response")
        self.response = None if response is None else _rules("response", response)

    def hooks(self):
        if self.response is not None:
            return sp.Hooks.ON_REQUEST | sp.Hooks.ON_RESPONSE
        return sp.Hooks.ON_REQUEST

    def on_request(self, request):
        _apply(request, self.request)
        return request

    def on_response(self, response):
        if self.response is not None:
            _apply(response, self.response)
        return response


Handler = sp.export(HeaderRewrite)
