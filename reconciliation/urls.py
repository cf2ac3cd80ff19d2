from django.urls import path

from . import views

app_name = "reconciliation"

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dcr/<int:pk>/", views.dcr_detail, name="dcr"),
    path("dcr/<int:pk>/decide/", views.dcr_decide, name="dcr_decide"),
    path("dcr/<int:pk>/submit/", views.dcr_submit, name="dcr_submit"),
    path("dbs/<int:pk>/", views.dbs_detail, name="dbs"),
    path("dbs/<int:pk>/decide/", views.dbs_decide, name="dbs_decide"),
    path("dbs/<int:pk>/submit/", views.dbs_submit, name="dbs_submit"),
    path("deposits/<int:pk>/slip/", views.deposit_slip, name="deposit_slip"),
    path("export/<str:kind>.<str:fmt>", views.export, name="export"),
    path("statements/upload/", views.statement_upload, name="statement_upload"),
    path("statements/<int:pk>/", views.statement_detail, name="statement"),
]
