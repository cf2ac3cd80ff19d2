"""The mandate workflow screens (/mandates/). Importing ``selectors`` registers the
mandates source of the approvals inbox."""

from django.urls import path

from . import (
    selectors,  # noqa: F401 - registers the inbox source
    views,
)

app_name = "mandates"

urlpatterns = [
    path("<int:pk>/review/", views.mandate_review, name="review"),
    path("<int:pk>/review/decide/", views.mandate_decide, name="decide"),
]
