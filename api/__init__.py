"""The plumbing of the REST API (/api/): what every app's ``<app>/api/`` uses.

- Authentication (``REST_FRAMEWORK`` defaults): ``api.authentication.ApiKeyAuthentication``
  (``Authorization: Api-Key <key>`` or ``X-Api-Key``) then DRF's ``SessionAuthentication``
  (staff, CSRF-checked). A key request's ``request.user`` is an ``api.principal.ApiPrincipal``
  (``is_api_client``, ``api_client``, ``has_scope()``, ``pk`` None); ``request.auth`` is the
  ``api.models.ApiClient``. Audit events of the request name it ``api:<client name>``.
- Permissions: ``permission_classes = [api.permissions.HasScope]`` with
  ``required_scopes = {"GET": "...:read", "POST": "...:write"}`` (scopes in ``api.scopes``)
  and ``required_perms = {"GET": "app.view_model", ...}`` for staff.
- Scoping: selectors call ``accounts.scoping.scope_queryset(qs, request.user)``; it knows
  API principals (``allowed_branches``, or everything with ``all_branches``).
- Errors: raise ``core.errors.ApplicationError`` subclasses (or DRF's exceptions);
  ``api.exceptions.exception_handler`` renders ``{"error": {"code", "message", "fields"?}}``.
- Pagination: page numbers by default (``api.pagination.PageNumberPagination``);
  DynamoDB lists use ``api.pagination.DynamoCursorPagination`` / ``encode_cursor`` /
  ``decode_cursor`` (signed, opaque cursors).
- OpenAPI: ``api.schema.ApiAutoSchema`` documents the error envelope and the scopes;
  ``api.schema.error_response("...")`` for extra statuses in ``@extend_schema``.
- URLs: add ``path("v1/", include("<app>.api.urls"))`` to ``api/urls.py`` before the
  final catch-all (unknown /api/ URLs are a JSON 404).
"""
