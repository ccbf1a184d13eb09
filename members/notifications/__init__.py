"""Customer notifications: one row per (order, kind, channel), claimed before it is sent, sent once.

models.py (the Notification row), backends.py (one interface: e-mail through Django's mail, SMS through
an HTTP gateway or the console), services.py (queue in the caller's transaction, send, resume).
"""
