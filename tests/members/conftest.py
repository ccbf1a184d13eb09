import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.pickups.conftest import shop  # noqa: F401 - the same merchant, stores and staff

from . import fakes


@pytest.fixture(autouse=True)
def recorded_sms(settings):
    """SMS go to a recorder (e-mail to Django's test outbox, as pytest-django sets it up)."""
    settings.NOTIFICATIONS_SMS_BACKEND = "tests.members.fakes.RecordingSMS"
    settings.NOTIFICATIONS_EMAIL_BACKEND = "members.notifications.backends.EmailBackend"
    fakes.SENT.clear()
    fakes.FailingSMS.calls = 0
    return fakes.SENT


class Gateway(BaseHTTPRequestHandler):
    answers: list[int] = []
    seen: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Gateway.seen.append({"headers": dict(self.headers), "json": json.loads(body)})
        code = Gateway.answers.pop(0) if Gateway.answers else 200
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"id": "msg-77"} if code == 200 else {"error": "busy"}).encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def gateway(settings):
    server = HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Gateway.answers, Gateway.seen = [], []
    settings.SMS_GATEWAY_URL = f"http://127.0.0.1:{server.server_port}/send"
    settings.SMS_GATEWAY_TOKEN = "secret-token"
    settings.SMS_SENDER = "Lotus"
    settings.SMS_GATEWAY_TIMEOUT = 5
    yield Gateway
    server.shutdown()
    server.server_close()
