"""Routes under /metrics/v1/, without trailing slashes (APPEND_SLASH cannot redirect a POST)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from metrics import views

app_name = "metrics"
urlpatterns = [
    # SDK (public, token in the body)
    path("initialize", views.InitializeView.as_view(), name="initialize"),
    path(
        "sessions",
        views.by_method(get=views.SessionListView.as_view(), default=views.SessionsView.as_view()),
        name="sessions",
    ),
    path("events/get-user-media", views.GetUserMediaView.as_view(), name="events-gum"),
    path("events/browser", views.BrowserEventView.as_view(), name="events-browser"),
    path("connection", views.ConnectionEventView.as_view(), name="connection"),
    path("connection/batch", views.ConnectionBatchView.as_view(), name="connection-batch"),
    path("stats", views.stats_view, name="stats"),
    path("tracks", views.TracksView.as_view(), name="tracks"),
    # Server to server (apiKey in the body)
    path("services/stop-conference", views.StopConferenceView.as_view(), name="stop-conference"),
    path("services/get-url", views.ConferenceUrlView.as_view(), name="get-url"),
    # Dashboard (session or token auth, scoped to the caller's organizations)
    path("organizations", views.OrganizationListView.as_view(), name="organizations"),
    path("organizations/<str:pk>", views.OrganizationDetailView.as_view(), name="organization"),
    path("apps", views.AppListView.as_view(), name="apps"),
    path("apps/<str:pk>", views.AppDetailView.as_view(), name="app"),
    path("apps/<str:pk>/reset-key", views.AppResetKeyView.as_view(), name="app-reset-key"),
    path("conferences", views.ConferenceListView.as_view(), name="conferences"),
    # Aggregates of one app (peermetrics' summary routes), before the <pk> routes they would match.
    path("conferences/summary", views.ConferenceSummaryView.as_view(), name="conferences-summary"),
    path("conferences/duration-summary", views.ConferenceDurationSummaryView.as_view(), name="conferences-duration"),
    path(
        "conferences/participant-count-summary",
        views.ConferenceParticipantCountSummaryView.as_view(),
        name="conferences-participant-count",
    ),
    path("sessions/summary", views.SessionSummaryView.as_view(), name="sessions-summary"),
    path("connections/summary", views.ConnectionSummaryView.as_view(), name="connections-summary"),
    path(
        "connections/setup-time-summary", views.ConnectionSetupTimeSummaryView.as_view(), name="connections-setup-time"
    ),
    path("issues/summary", views.IssueSummaryView.as_view(), name="issues-summary"),
    path("issues/gum-summary", views.GumSummaryView.as_view(), name="issues-gum"),
    path("conferences/<str:pk>", views.ConferenceDetailView.as_view(), name="conference"),
    path("conferences/<str:pk>/events", views.ConferenceEventsView.as_view(), name="conference-events"),
    path("conferences/<str:pk>/graphs", views.ConferenceGraphsView.as_view(), name="conference-graphs"),
    path("participants", views.ParticipantListView.as_view(), name="participants"),
    path("participants/<str:pk>", views.ParticipantDetailView.as_view(), name="participant"),
    path("sessions/<str:pk>", views.SessionDetailView.as_view(), name="session"),
    path("connections", views.ConnectionListView.as_view(), name="connections"),
    path("connections/<str:pk>", views.ConnectionDetailView.as_view(), name="connection-detail"),
    path("issues", views.IssueListView.as_view(), name="issues"),
    path("issues/<str:pk>", views.IssueDetailView.as_view(), name="issue"),
    path("search", views.SearchView.as_view(), name="search"),
    # Dashboard page
    path("dashboard", views.dashboard_page, name="dashboard"),
    path(
        "dashboard/login",
        auth_views.LoginView.as_view(template_name="metrics/login.html", next_page="metrics:dashboard"),
        name="login",
    ),
]
