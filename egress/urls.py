from django.urls import path, re_path

from egress import views

app_name = "egress"
TASK = r"v1/(?P<app_id>[^/]+)/tasks/(?P<task_id>[a-f0-9]{1,64})"
urlpatterns = [
    path("v1/<str:app_id>/tasks", views.TaskListView.as_view(), name="tasks"),
    re_path(rf"^{TASK}$", views.TaskDetailView.as_view(), name="task"),
    re_path(rf"^{TASK}/status$", views.TaskStatusView.as_view(), name="task-status"),
    re_path(rf"^{TASK}/stop$", views.TaskStopView.as_view(), name="task-stop"),
    re_path(rf"^{TASK}/files$", views.TaskFilesView.as_view(), name="task-files"),
    re_path(rf"^{TASK}/files/(?P<name>[A-Za-z0-9_.\-]+)$", views.TaskFileView.as_view(), name="task-file"),
    path("v1/<str:app_id>/webhook", views.WebhookView.as_view(), name="webhook"),
]
