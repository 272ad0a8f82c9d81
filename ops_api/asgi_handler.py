"""Django's ASGI handler with the per-request thread cost taken out (issue 10).

Our views and middleware are synchronous. Stock `ASGIHandler` builds an *async* middleware chain, so every
`MiddlewareMixin` method (sessions, CSRF, messages, ...) hops to a worker thread and back: about fifteen
loop-to-thread round trips per request. It also opens a `ThreadSensitiveContext` per request, which
starts a new thread for the request's first synchronous call and joins it at the end. Measured under
`manage.py runtime`, those hops and that thread were most of a request's time (docs/benchmarks.md).

Here the middleware chain is built synchronously and runs, with the view, in one hop; and each request
borrows a long-lived single-thread executor from a pool instead of starting a thread. Everything else is
Django's handler: the same request object, middleware, signals, response sending and disconnect handling.
Thread-sensitivity is unchanged: all of one request's synchronous work (its database connection included)
runs on one thread, which serves no other request until this one has finished.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest, HttpResponseBase


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        BaseHandler.__init__(self)
        # Synchronous chain: the middleware runs on the request's thread with the view, in one hop.
        self.load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        # Thread-sensitive, as Django runs sync views: the request's own thread, which also ran
        # request_started and will close the response (and with it the database connection).
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def get_application() -> SyncChainASGIHandler:
    """Like django.core.asgi.get_asgi_application(), with the pooled-thread handler."""
    import django

    django.setup(set_prefix=False)
    return SyncChainASGIHandler()
