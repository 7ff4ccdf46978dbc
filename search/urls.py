from django.urls import path

from search import views

app_name = "search"
urlpatterns = [
    path("", views.search_view, name="search"),
    path("photo/", views.photo_search_view, name="photo"),
    path("look/", views.look_view, name="look"),
    path("describe/", views.describe_view, name="describe"),
    path("similar/<slug:slug>/", views.similar_view, name="similar"),
]
