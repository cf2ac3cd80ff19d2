from django.urls import path

from . import views

urlpatterns = [
    path(
        "banking-partners/<slug:code>/results",
        views.PartnerResultsView.as_view(),
        name="partner-results",
    ),
]
