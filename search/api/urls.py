from django.urls import path

from search.api import views

app_name = "search-api"
urlpatterns = [
    path("search/text/", views.TextSearchApi.as_view(), name="text"),
    path("search/image/", views.ImageSearchApi.as_view(), name="image"),
    path("search/hybrid/", views.HybridSearchApi.as_view(), name="hybrid"),
    path("search/look/", views.DetectApi.as_view(), name="look"),
    path("products/<int:pk>/similar/", views.SimilarProductsApi.as_view(), name="similar"),
    path("describe/", views.DescribeApi.as_view(), name="describe"),
    path("similarity/", views.SimilarityApi.as_view(), name="similarity"),
    path("suggest/", views.SuggestApi.as_view(), name="suggest"),
    path("stats/", views.StatsApi.as_view(), name="stats"),
    path("reindex/", views.ReindexApi.as_view(), name="reindex"),
]
# The look route's first path, served only among the unversioned aliases (config/urls.py);
# its name is its successor's.
legacy_urlpatterns = [path("detect/", views.DetectApi.as_view(), name="look")]
