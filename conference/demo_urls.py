"""Sample pages (mounted at /demo/ by owt/urls.py)."""

from django.urls import path

from conference import demo_views

app_name = "demo"
urlpatterns = [
    path("", demo_views.join_page, name="join"),
    path("quick", demo_views.quick_page, name="quick"),
    path("quick/<str:room_id>/join", demo_views.quick_join, name="quick-join"),
]
