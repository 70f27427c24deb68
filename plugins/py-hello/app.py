"""py-hello: a standard wasi:http/proxy component written in Python (componentize-py).

The gateway presents the backend request as the incoming request (its URL is the backend
URL). This component:

- answers by itself when the path ends with ``/hello``: 200 ``application/json``
  ``{"message": "hello from python", "path": <path>}`` plus ``"greeting"`` when the
  ``greeting`` setting is given;
- otherwise forwards the request unchanged (method, scheme, authority, path and query,
  headers, body) with ``wasi:http/outgoing-handler``, which the gateway routes through its
  own client and allow-list, and streams the backend's answer back as it is.

Settings come from ``wasi:config/store``: one key per top-level settings field, each value
that field's JSON text (a string setting ``"hi"`` reads as ``'"hi"'``).

Everything is synchronous (``blocking-*`` stream calls, ``pollable.block``): a request is one
call of ``handle`` and needs no event loop.
"""

import json
from typing import List, Tuple

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import outgoing_handler, store, streams, types

# How many bytes one splice may move (the host may move fewer).
CHUNK = 64 * 1024

Headers = List[Tuple[str, bytes]]


def setting(key: str):
    """The value of a setting (decoded from its JSON text), or None when absent or unreadable."""
    try:
        text = store.get(key)
    except Err:
        return None
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def fields(entries: Headers) -> types.Fields:
    """A new header set with these entries. Names the host forbids a guest to set (hop-by-hop
    headers such as `connection`, and `host`, which the host writes itself) are left out."""
    try:
        return types.Fields.from_list(entries)
    except Err:
        pass
    out = types.Fields()
    for name, value in entries:
        try:
            out.append(name, value)
        except Err:
            pass
    return out


def pump(source: types.IncomingBody, sink: types.OutgoingBody) -> None:
    """Moves a whole body from `source` to `sink` (host to host: the bytes never enter
    Python), then finishes both. Raises `Err` if the sink goes away before the end."""
    with source.stream() as reader, sink.write() as writer:
        while True:
            try:
                writer.blocking_splice(reader, CHUNK)
            except Err as e:
                if isinstance(e.value, streams.StreamError_Closed):
                    break  # the end of `source` (or `sink` closed: flush tells)
                raise
        writer.blocking_flush()
    types.IncomingBody.finish(source)
    types.OutgoingBody.finish(sink, None)


def write_all(sink: types.OutgoingBody, data: bytes) -> None:
    """Writes `data` as the whole body of `sink` and finishes it."""
    with sink.write() as writer:
        for start in range(0, len(data), 4096):
            writer.blocking_write_and_flush(data[start : start + 4096])
    types.OutgoingBody.finish(sink, None)


def answer_hello(path: str, response_out: types.ResponseOutparam) -> None:
    payload = {"message": "hello from python", "path": path}
    greeting = setting("greeting")
    if isinstance(greeting, str):
        payload["greeting"] = greeting
    body = json.dumps(payload).encode()
    response = types.OutgoingResponse(
        fields(
            [
                ("content-type", b"application/json"),
                ("content-length", str(len(body)).encode()),
            ]
        )
    )
    response.set_status_code(200)
    outgoing_body = response.body()
    types.ResponseOutparam.set(response_out, Ok(response))
    write_all(outgoing_body, body)


def forward(request: types.IncomingRequest, response_out: types.ResponseOutparam) -> None:
    with request.headers() as headers:
        entries = headers.entries()
    outgoing = types.OutgoingRequest(fields(entries))
    outgoing.set_method(request.method())
    outgoing.set_scheme(request.scheme())
    outgoing.set_authority(request.authority())
    outgoing.set_path_with_query(request.path_with_query())
    outgoing_body = outgoing.body()

    try:
        pending = outgoing_handler.handle(outgoing, None)
    except Err as e:
        # Refused before anything was sent (for instance a host outside allowed_hosts).
        types.ResponseOutparam.set(response_out, Err(e.value))
        return
    # The request is on its way; its body follows while the host waits for it. If the host
    # gave up on the request (refused, failed), the body has nowhere to go: the response
    # below carries the reason.
    try:
        pump(request.consume(), outgoing_body)
    except Err:
        pass

    with pending:
        result = pending.get()
        while result is None:
            with pending.subscribe() as ready:
                ready.block()
            result = pending.get()
    # result: Ok(Ok(incoming-response) | Err(error-code)), or Err(()) if already taken.
    if isinstance(result, Err) or isinstance(result.value, Err):
        code = (
            result.value.value
            if isinstance(result, Ok)
            else types.ErrorCode_InternalError("response already taken")
        )
        types.ResponseOutparam.set(response_out, Err(code))
        return
    backend = result.value.value

    with backend.headers() as headers:
        entries = headers.entries()
    response = types.OutgoingResponse(fields(entries))
    response.set_status_code(backend.status())
    response_body = response.body()
    types.ResponseOutparam.set(response_out, Ok(response))
    with backend:
        pump(backend.consume(), response_body)


class IncomingHandler(exports.IncomingHandler):
    def handle(
        self, request: types.IncomingRequest, response_out: types.ResponseOutparam
    ) -> None:
        target = request.path_with_query() or "/"
        path = target.split("?", 1)[0]
        if path.endswith("/hello"):
            answer_hello(path, response_out)
        else:
            forward(request, response_out)
