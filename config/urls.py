from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from shop.urls import api_urlpatterns as shop_api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("search/", include("search.urls")),
    path("api/", include("search.api.urls")),
    path("api/", include((shop_api, "shop-api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="schema"),
        name="swagger-ui",
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
