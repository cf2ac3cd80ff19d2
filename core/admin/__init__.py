"""The admin machinery that knows no domain (it imports no app):

- ``site``: the site (sidebar kept per permission set, a query string no store takes
  refused, the styled 403) and the hooks apps register in ``ready()``;
- ``base``: ``BackOfficeModelAdmin`` (ASCII-only forms), ``LargeTableAdmin`` (bounded
  count, deferred join, lean rows), ``is_set_filter``;
- ``rows``: the lean row renderer;
- ``dynamo``: ``DynamoAdmin``, the base of the read-only screens over DynamoDB;
- ``approval_request``: ``ReasonForm`` and the one "request an approval" page.
- ``file_import``: ``FileImportAdmin`` and ``FileUploadForm``, the one file-import admin
  (upload, preview, import with progress, result file) of the imports and bulk repayments.

The scoped bases live beside the scoping function, in ``accounts.admin_base``.
"""
