from django.urls import path

from search.api import views

app_name = "search-api"
urlpatterns = [
    path("search/text/", views.TextSearchApi.as_view(), name="text"),
]
