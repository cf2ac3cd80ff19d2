"""Test-only endpoints (under /api/test/) that raise each kind of error, plus the real URLs."""

from django.http import Http404
from django.urls import include, path
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from api.pagination import DynamoCursorPagination
from config import urls as root
from config.urls import handler400, handler403, handler404, handler500  # noqa: F401
from core.errors import ServiceUnavailable


class ItemSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=10, decimal_places=2)


class EchoSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    items = ItemSerializer(many=True, required=False)

    def validate(self, attrs):
        if attrs["amount"] < 0:
            raise serializers.ValidationError("The amount cannot be negative.")
        return attrs


class Echo(APIView):
    def post(self, request):
        serializer = EchoSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response({"amount": serializer.validated_data["amount"]})


class Boom(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError("secret internals: do not show")


class Unavailable(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise ServiceUnavailable("The ledger is in maintenance.", retry_after=30, field="ledger")


class Throttled(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise exceptions.Throttled(wait=17)


class Missing(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise Http404("no such thing")


class Cursor(APIView):
    """Echoes a page of fake DynamoDB results with the next cursor."""

    permission_classes = [AllowAny]
    pagination_class = DynamoCursorPagination

    def get(self, request):
        paginator = self.pagination_class()
        start = paginator.get_start_key(request)
        position = int(start["pk"]["N"]) if start else 0
        size = paginator.get_page_size(request)
        results = list(range(position, min(position + size, 5)))
        last_key = {"pk": {"N": str(results[-1] + 1)}} if results and results[-1] < 4 else None
        return paginator.get_paginated_response(results, last_key)


class RenameBranch(APIView):
    """An audited write made by whoever calls (accounts.Branch is tracked)."""

    def post(self, request, pk):
        from accounts.models import Branch

        branch = Branch.objects.get(pk=pk)
        branch.name = request.data["name"]
        branch.save(update_fields=["name"])
        return Response({"name": branch.name})


def django_boom(request):
    raise RuntimeError("a plain Django view failed")


test_patterns = [
    path("echo", Echo.as_view()),
    path("boom", Boom.as_view()),
    path("unavailable", Unavailable.as_view()),
    path("throttled", Throttled.as_view()),
    path("missing", Missing.as_view()),
    path("cursor", Cursor.as_view()),
    path("django-boom", django_boom),
    path("branches/<int:pk>/rename", RenameBranch.as_view()),
]

urlpatterns = [path("api/test/", include(test_patterns)), *root.urlpatterns]
