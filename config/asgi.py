"""ASGI entry point: HTTP through Django, WebSocket through Channels. Serving this app never schedules;
schedulers and projectors are their own processes (or threads of `manage.py runtime`)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from ops_api.asgi_handler import get_application  # noqa: E402

# Django's ASGI handler without a thread hop per middleware or a new thread per request (issue 10).
django_asgi_app = get_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from ops_api.push.backpressure import with_send_in_scope  # noqa: E402
from ops_api.routing import websocket_urlpatterns  # noqa: E402

# WebSocket auth (token, or the session cookie) happens in the consumer, which reads the session itself:
# no middleware wraps `send`, which the push streams need to see for backpressure (backpressure.py).
application = with_send_in_scope(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": URLRouter(websocket_urlpatterns),
        }
    )
)
