from functools import wraps

from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, include, path, re_path, reverse
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from search.api.urls import legacy_urlpatterns as search_api_legacy
from search.api.urls import urlpatterns as search_api
from shop.urls import api_urlpatterns as shop_api

API_VERSION = "v1"


# When the unversioned paths were deprecated (RFC 9745 ``Deprecation: @<epoch seconds>``):
# 2026-12-02, the release that introduced /api/v1/.
UNVERSIONED_DEPRECATED_AT = 1_796_169_600


def unversioned(patterns: list[URLPattern], app_name: str) -> list[URLPattern]:
    """The same routes for the unversioned ``/api/...`` paths, kept for one release (README
    "API compatibility"): each answer says it is deprecated and names its /api/v1/ successor
    (the versioned route of the same name)."""

    def alias(view, name: str):
        @wraps(view)
        def deprecated(request, *args, **kwargs):
            response = view(request, *args, **kwargs)
            successor = reverse(f"{app_name}:{name}", args=args, kwargs=kwargs)
            response["Deprecation"] = f"@{UNVERSIONED_DEPRECATED_AT}"
            response["Link"] = f'<{successor}>; rel="successor-version"'
            return response

        return deprecated

    return [
        URLPattern(p.pattern, alias(p.callback, p.name), p.default_args, p.name) for p in patterns
    ]


urlpatterns = [
    path("admin/", admin.site.urls),
    path("search/", include("search.urls")),
    path(f"api/{API_VERSION}/", include((search_api, "search-api"))),
    path(f"api/{API_VERSION}/", include((shop_api, "shop-api"))),
    # The schema and its docs describe the current version (only /api/v1/ paths are in it).
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file: the CSP allows no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path(
        "api/",
        include(
            (unversioned(search_api + search_api_legacy, "search-api"), "search-api"),
            namespace="search-api-unversioned",
        ),
    ),
    path(
        "api/",
        include((unversioned(shop_api, "shop-api"), "shop-api"), namespace="shop-api-unversioned"),
    ),
    path("api-auth/", include("rest_framework.urls")),
    path("", include("shop.urls")),
]

if settings.SERVE_MEDIA:
    # Single-host setups (the run command, tests); production puts a web server or CDN here.
    urlpatterns.insert(
        0,
        re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}),
    )
