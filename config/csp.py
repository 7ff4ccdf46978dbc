"""Content-Security-Policy on every response (``CONTENT_SECURITY_POLICY``, default in
``config/settings/base.py``).

The default allows scripts only from this site's own files: the pages, the admin and the API
docs carry no inline script, so an injected ``<script>`` or ``onerror=`` attribute does not
run even if some text escaped escaping. Styles may be inline (``style=`` attributes are
harmless without script); images may be data/blob URLs (the photo preview and the kept query
photo are shown inline).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.policy = settings.CONTENT_SECURITY_POLICY

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response
