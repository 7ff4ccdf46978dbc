from django.urls import path

from shop import api, views

app_name = "shop"
urlpatterns = [
    path("", views.product_list_view, name="product-list"),
    path("products/<slug:slug>/", views.product_detail_view, name="product-detail"),
]

api_urlpatterns = [
    path("products/", api.ProductListApi.as_view(), name="api-product-list"),
    path("products/<int:pk>/", api.ProductDetailApi.as_view(), name="api-product-detail"),
    path(
        "products/<int:pk>/images/", api.ProductImageAddApi.as_view(), name="api-product-image-add"
    ),
]
