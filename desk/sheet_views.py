"""Placeholder while the collection sheet is built in parallel: replaced by its helper."""

from django.http import Http404


def sheet(request):
    raise Http404
