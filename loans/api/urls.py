from django.urls import path

from .views import LoanAccountViewSet

urlpatterns = [
    path("loans/", LoanAccountViewSet.as_view({"get": "list"}), name="loan-list"),
    path(
        # a slug: PostgreSQL refuses text with a NUL character, and a loan number is
        # never anything but letters and digits; other values get the catch-all JSON 404
        "loans/<slug:loan_number>",
        LoanAccountViewSet.as_view({"get": "retrieve"}),
        name="loan-detail",
    ),
]
