"""Stream-engine REST API (``/v1.1/stream-engine/...``), with or without a trailing slash
(the slash variants stay out of the OpenAPI schema)."""

from django.urls import URLPattern, path

from streamengine import views

app_name = "streamengine"

PREFIX = "v1.1/stream-engine"


def routes(route: str, view: type, name: str) -> list[URLPattern]:
    return [path(f"{PREFIX}/{route}", view.as_view(), name=name), path(f"{PREFIX}/{route}/", view.as_view(schema=None))]


urlpatterns = [
    *routes("tokens", views.TokenCreateView, "tokens"),
    *routes("participants", views.ParticipantListView, "participants"),
    *routes("participants/<str:object_id>", views.ParticipantDetailView, "participant"),
    *routes("publications", views.PublicationListView, "publications"),
    *routes("publications/<str:object_id>", views.PublicationDetailView, "publication"),
    *routes("subscriptions", views.SubscriptionListView, "subscriptions"),
    *routes("subscriptions/<str:object_id>", views.SubscriptionDetailView, "subscription"),
    *routes("processors", views.ProcessorListView, "processors"),
    *routes("processors/<str:object_id>", views.ProcessorDetailView, "processor"),
    *routes("nodes", views.NodeListView, "nodes"),
    *routes("nodes/<str:object_id>", views.NodeDetailView, "node"),
]
