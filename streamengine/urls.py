"""Stream-engine REST API (``/v1.1/stream-engine/...``); trailing slashes are accepted."""

from django.urls import re_path

from streamengine import views

app_name = "streamengine"

PREFIX = r"^v1\.1/stream-engine"
ID = r"(?P<object_id>[^/]+)"

urlpatterns = [
    re_path(rf"{PREFIX}/tokens/?$", views.TokenCreateView.as_view(), name="tokens"),
    re_path(rf"{PREFIX}/participants/?$", views.ParticipantListView.as_view(), name="participants"),
    re_path(rf"{PREFIX}/participants/{ID}/?$", views.ParticipantDetailView.as_view(), name="participant"),
    re_path(rf"{PREFIX}/publications/?$", views.PublicationListView.as_view(), name="publications"),
    re_path(rf"{PREFIX}/publications/{ID}/?$", views.PublicationDetailView.as_view(), name="publication"),
    re_path(rf"{PREFIX}/subscriptions/?$", views.SubscriptionListView.as_view(), name="subscriptions"),
    re_path(rf"{PREFIX}/subscriptions/{ID}/?$", views.SubscriptionDetailView.as_view(), name="subscription"),
    re_path(rf"{PREFIX}/nodes/?$", views.NodeListView.as_view(), name="nodes"),
    re_path(rf"{PREFIX}/nodes/{ID}/?$", views.NodeDetailView.as_view(), name="node"),
]
