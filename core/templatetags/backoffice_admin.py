"""The back-office admin site's template tags (``core.admin``):

- ``{% sidebar_app_list %}``: the sidebar's app list, rendered once per permission set and
  highlighted entry (``core.admin.site``; templates/admin/nav_sidebar.html);
- ``{% site_header_links %}``: the links the apps register for the header
  (templates/admin/base_site.html);
- ``{% page_banners %}``: the banners the apps register for every page (the ledger in
  maintenance), above the messages (templates/admin/base_site.html);
- ``{% lean_result_list cl %}``: Django's ``{% result_list cl %}`` with the rows from
  ``core.admin.rows.lean_results`` (templates/admin/lean_change_list.html).
"""

from django import template
from django.contrib.admin.templatetags.admin_list import result_headers, result_hidden_fields
from django.contrib.admin.templatetags.base import InclusionAdminNode

from core.admin.rows import lean_results
from core.admin.site import header_links_html, page_banners_html, sidebar_html

register = template.Library()


@register.simple_tag(takes_context=True)
def sidebar_app_list(context):
    return sidebar_html(context["request"], context.get("available_apps") or [])


@register.simple_tag(takes_context=True)
def site_header_links(context):
    request = context.get("request")
    return header_links_html(request) if request is not None else ""


@register.simple_tag(takes_context=True)
def page_banners(context):
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    return page_banners_html(request)


def lean_result_list(cl):
    headers = list(result_headers(cl))
    return {
        "cl": cl,
        "result_hidden_fields": list(result_hidden_fields(cl)),
        "result_headers": headers,
        "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
        "results": list(lean_results(cl)),
    }


@register.tag(name="lean_result_list")
def lean_result_list_tag(parser, token):
    return InclusionAdminNode(
        parser,
        token,
        func=lean_result_list,
        template_name="change_list_results.html",
        takes_context=False,
    )
