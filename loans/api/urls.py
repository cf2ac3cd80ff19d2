from django.urls import path

from .views import LoanAccountViewSet

urlpatterns = [
    path("loans/", LoanAccountViewSet.as_view({"get": "list"}), name="loan-list"),
    path(
        "loans/<str:loan_number>",
        LoanAccountViewSet.as_view({"get": "retrieve"}),
        name="loan-detail",
    ),
]
