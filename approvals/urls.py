from django.urls import path

from . import views

app_name = "approvals"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("mine/", views.my_requests, name="mine"),
    path("requests/<int:pk>/", views.request_detail, name="detail"),
    path("requests/<int:pk>/decide/", views.request_decide, name="decide"),
]
