"""Django's ASGI handler with the per-request thread cost taken out (issue 10).

Our views and middleware are synchronous. Stock `ASGIHandler` builds an *async* middleware chain, so every
`MiddlewareMixin` method (sessions, CSRF, messages, ...) hops to a worker thread and back: about fifteen
loop-to-thread round trips per request. It also opens a `ThreadSensitiveContext` per request, which
starts a new thread for the request's first synchronous call and joins it at the end. Measured under
`manage.py runtime`, those hops and that thread were most of a request's time (docs/benchmarks.md).

Here the middleware chain is built synchronously, and a request's synchronous work runs in one hop:
`request_started`, building the request, the chain with the view and, for a response whose body is
already in memory, `response.close()` (which sends `request_finished`, returning the database connection
to the pool before the bytes go out rather than after). Only a streaming response (a file, an SSE
stream) is closed in a second hop after it has been sent, as Django does. Each request borrows a
long-lived single-thread executor (`RequestThreads`) for its thread-sensitive context instead of starting
and joining a thread. Everything else is Django's handler: the same request object, middleware, signals,
response sending and disconnect handling. Thread-sensitivity is unchanged: all of one request's
synchronous work (its database connection included) runs on one thread, which serves no other request
until this one has finished.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix

# Idle request threads kept for reuse; a burst beyond this many concurrent requests starts threads that end
# with it (as every request's thread did before).
IDLE_THREADS_KEPT = 64


class RequestThreads:
    """Long-lived single-thread executors lent to one request at a time."""

    def __init__(self, keep: int = IDLE_THREADS_KEPT) -> None:
        self._keep = keep
        self._idle: list[ThreadPoolExecutor] = []
        self._lock = threading.Lock()

    def borrow(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        with self._lock:
            if len(self._idle) < self._keep:
                self._idle.append(executor)
                return
        executor.shutdown(wait=False)


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        BaseHandler.__init__(self)
        # Synchronous chain: the middleware runs on the request's thread with the view, in one hop.
        self.load_middleware(is_async=False)
        self.request_threads = RequestThreads()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self.request_threads.borrow()
        try:
            # The request's thread-sensitive calls (request_started, the chain and view, response.close)
            # all run on the borrowed thread; the context owns no executor of its own, so nothing is
            # started or joined per request.
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self.request_threads.give_back(executor)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Django's `ASGIHandler.handle`, with the request's synchronous work in one hop (`_serve`)."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))

        async def process_request() -> HttpResponseBase:
            response = await sync_to_async(self._serve, thread_sensitive=True)(scope, body_file)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # the client disconnected while the response was being sent
            return response

        # As Django does: a disconnect while the response is produced or sent cancels it (an SSE stream
        # stops; a synchronous view runs to its end on its thread, but nothing more is sent).
        producer = asyncio.create_task(process_request())
        tasks = [asyncio.create_task(self.listen_for_disconnect(receive)), producer]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        try:
            response = producer.result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            if not response.closed:
                await sync_to_async(response.close, thread_sensitive=True)()
        body_file.close()

    def _serve(self, scope: dict[str, Any], body_file: IO[bytes]) -> HttpResponseBase:
        """On the request's thread: request_started, the request, the chain and view, and closing a
        response that holds its whole body (`request_finished`)."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        response: HttpResponseBase | None = error_response if request is None else self.get_response(request)
        if response is None:  # create_request gives a request or an error response, never neither
            raise RuntimeError("no response for the request")
        response._handler_class = self.__class__  # type: ignore[attr-defined]  # as Django sets it
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        if not response.streaming:
            response.close()
        return response


def get_application() -> SyncChainASGIHandler:
    """Like django.core.asgi.get_asgi_application(), with the pooled-thread handler."""
    import django

    django.setup(set_prefix=False)
    return SyncChainASGIHandler()
