from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .models import Area, Branch, Region, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "employee_code", "first_name", "last_name", "level", "is_active"]
    list_filter = ["level", "is_active", "groups"]
    search_fields = ["username", "employee_code", "first_name", "last_name"]
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        (
            "Place in the hierarchy",
            {
                "fields": (
                    "employee_code",
                    "mobile",
                    "level",
                    "home_branch",
                    "home_area",
                    "home_region",
                )
            },
        ),
    )


admin.site.register([Region, Area, Branch])
