from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from sessions_ddb.services import user_sessions_end

from .admin_base import ScopedModelAdmin, ScopedRelatedFilter
from .forms import StaffChangeForm, StaffCreationForm
from .models import Area, Branch, Region, User
from .services import user_create, user_update

USER_FIELDS = frozenset(f.name for f in User._meta.concrete_fields)


@admin.register(User)
class UserAdmin(ScopedModelAdmin, DjangoUserAdmin):
    form = StaffChangeForm
    add_form = StaffCreationForm
    list_display = [
        "username",
        "employee_code",
        "first_name",
        "last_name",
        "level",
        "home_branch",
        "is_active",
    ]
    list_select_related = ["home_branch"]
    list_filter = ["level", "is_active", "groups", ("home_branch", ScopedRelatedFilter)]
    search_fields = ["username", "employee_code", "first_name", "last_name"]
    autocomplete_fields = ["home_branch"]
    actions = ["end_sessions"]
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
    add_fieldsets = (
        (None, {"fields": ("username", "usable_password", "password1", "password2")}),
        (
            "Who and where",
            {
                "fields": (
                    "first_name",
                    "last_name",
                    "email",
                    "employee_code",
                    "mobile",
                    "level",
                    "home_branch",
                    "home_area",
                    "home_region",
                    "groups",
                )
            },
        ),
    )

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.actor = request.user  # a class made for this request (modelform_factory)
        return form

    def save_model(self, request, obj, form, change):
        # The form checked the services' rules already (a refusal showed on it); the
        # services check them again under the row's lock, and save.
        groups = form.cleaned_data.get("groups")
        if change:
            changes = {n: form.cleaned_data[n] for n in form.changed_data if n in USER_FIELDS}
            user_update(user_id=obj.pk, actor=request.user, groups=groups, **changes)
            return
        # The add form hashed the password into obj; the service saves and welcomes.
        fields = {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}
        del fields[obj._meta.pk.attname]
        obj.pk = user_create(actor=request.user, groups=groups, **fields).pk

    @admin.action(description="End all sessions of the selected users")
    def end_sessions(self, request, queryset):
        for user in queryset:
            ended = user_sessions_end(user_id=user.pk)
            self.message_user(request, f"{user}: {ended} session(s) ended", messages.SUCCESS)


@admin.register(Region)
class RegionAdmin(ScopedModelAdmin):
    list_display = ["code", "name"]
    search_fields = ["code", "name"]


@admin.register(Area)
class AreaAdmin(ScopedModelAdmin):
    list_display = ["code", "name", "region"]
    list_select_related = ["region"]
    list_filter = ["region"]
    search_fields = ["code", "name"]


@admin.register(Branch)
class BranchAdmin(ScopedModelAdmin):
    list_display = [
        "code",
        "name",
        "area",
        "state",
        "cash_in_hand_limit",
        "cash_receipt_limit",
        "cutoff_time",
        "is_active",
    ]
    list_select_related = ["area"]
    list_filter = ["area__region", "area", "state", "is_active"]
    search_fields = ["code", "name"]
