"""``{% sidebar_app_list %}``: the admin sidebar's app list, rendered once per permission
set and highlighted entry (``accounts.admin_site``)."""

from django import template

from accounts.admin_site import sidebar_html

register = template.Library()


@register.simple_tag(takes_context=True)
def sidebar_app_list(context):
    return sidebar_html(context["request"], context.get("available_apps") or [])
