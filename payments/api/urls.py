from django.urls import path

from . import views

urlpatterns = [
    path("transactions", views.TransactionsView.as_view(), name="transactions"),
    path("transactions/batch", views.TransactionBatchView.as_view(), name="transactions-batch"),
    path("transactions/<str:txn_id>", views.TransactionDetailView.as_view(), name="transaction"),
]
