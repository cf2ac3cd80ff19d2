"""The branch desk's screens (/desk/), inside the admin's frame."""

from django.urls import path

from . import sheet_views, views

app_name = "desk"

urlpatterns = [
    path("collect/", views.collect, name="collect"),
    path("find/", views.find, name="find"),
    path("receipts/find/", views.receipt_find, name="receipt_find"),
    path("receipts/<int:pk>/", views.receipt, name="receipt"),
    path("sheet/", sheet_views.sheet, name="sheet"),
]
