"""The admin's start page: the lender's name, and the panels each role gets (branch staff:
find a loan, today's collections, the collection sheet; managers: the inbox and today's DCR
of their own branches only; finance: the dashboard's headline; operations: the posting
queue and the daily jobs); a failing panel does not take the page down."""

import datetime
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.admin import site as admin_site
from mandates.services import mandate_submit
from payments.services import business_date_for
from reconciliation import services as recon
from tests.factories import UserFactory, draft_mandate, pay

pytestmark = pytest.mark.django_db

START = "/admin/"


def start_page(user) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(START)
    assert response.status_code == 200
    return response.content.decode()


def panel(html: str, panel_id: str) -> str:
    """The HTML of one panel (each is one ``div.module`` without nested modules)."""
    found = re.search(rf'<div class="module start-panel" id="{panel_id}">(.*?)\n</div>', html, re.S)
    assert found, f"no panel {panel_id}"
    return found.group(1)


def today_at(branch):
    return business_date_for(branch, timezone.now())


def test_the_header_title_and_view_site_say_the_lender_and_lead_to_the_start_page(world, settings):
    settings.LENDER_NAME = "Kaveri Credit Ltd"
    html = start_page(world.users["BS"])
    assert '<div id="site-name"><a href="/admin/">Kaveri Credit Ltd Back-office</a></div>' in html
    assert "<title>Start page | Kaveri Credit Ltd Back-office</title>" in html
    assert "Django administration" not in html and "Django site admin" not in html
    assert '<a href="/admin/">View site</a>' in html


def test_branch_staff_find_a_loan_see_todays_collections_and_the_sheet(world):
    own, near = world.branches["own"], world.branches["near"]
    pay(world.loans["own"], "123456.00", day=today_at(own))
    pay(world.loans["own"], "544.00", mode="UPI", day=today_at(own))
    pay(world.loans["near"], "999.00", day=today_at(near))  # another branch's

    html = start_page(world.users["BS"])
    desk = panel(html, "start-desk")
    assert f'action="{reverse("desk:find")}"' in desk and 'name="q"' in desk
    assert f'href="{reverse("desk:sheet")}"' in desk
    today = panel(html, "start-today")
    assert f"Today at {own.name}" in today
    assert '<td class="num start-today-count">2</td>' in today
    assert "₹1,24,000.00" in today and "999" not in today
    assert "not built yet" in today  # no DCR for the day yet
    for others in ("start-inbox", "start-dashboard", "start-queue", "start-jobs"):
        assert f'id="{others}"' not in html
    assert 'id="content-main"' in html and "app-loans" in html  # the app list stays


def test_a_branch_manager_sees_only_their_branchs_inbox_entries_and_dcr(world):
    own, near = world.branches["own"], world.branches["near"]
    near_staff = UserFactory(role="Branch Staff", home_branch=near)
    mine = draft_mandate(world.loans["own"], world.users["BS"])
    mandate_submit(mandate_id=mine.pk, actor=world.users["BS"])
    theirs = draft_mandate(world.loans["near"], near_staff)
    mandate_submit(mandate_id=theirs.pk, actor=near_staff)
    for branch in (own, near):
        pay(world.loans["own" if branch == own else "near"], "100.00", day=today_at(branch))
        recon.dcr_build(branch_id=branch.pk, business_date=today_at(branch))

    html = start_page(world.users["BM"])
    inbox = panel(html, "start-inbox")
    assert '<span class="figure" id="start-inbox-count">1</span>' in inbox
    assert world.loans["own"].loan_number in inbox
    assert world.loans["near"].loan_number not in inbox
    today = panel(html, "start-today")
    assert f"Today at {own.name}" in today and near.name not in today
    assert "Draft" in today and "(provisional)" in today  # today's DCR and its status

    # the area manager over both sees both branches' days (and the dashboard's headline)
    html = start_page(world.users["AM"])
    today = panel(html, "start-today")
    assert own.name in today and near.name in today
    assert world.branches["far"].name not in today
    assert 'id="start-dashboard"' in html


def test_finance_sees_the_dashboard_headline_and_its_link(world):
    own = world.branches["own"]
    own.cutoff_time = datetime.time(23, 59, 59)  # the calendar day is the business date
    own.save()
    pay(world.loans["own"], "123456.00", day=timezone.localdate())
    recon.dcr_build(branch_id=own.pk, business_date=timezone.localdate())

    html = start_page(world.users["FI"])
    dashboard = panel(html, "start-dashboard")
    assert f'href="{reverse("reconciliation:dashboard")}"' in dashboard
    assert '<td class="num" id="start-dashboard-today">₹1,23,456.00</td>' in dashboard
    assert 'id="start-desk"' not in html and 'id="start-today"' not in html


def test_operations_see_the_posting_queue_and_the_daily_jobs(world):
    pay(world.loans["own"], "100.00")  # one payment waiting to be posted
    html = start_page(world.users["OP"])
    queue = panel(html, "start-queue")
    assert '<td class="num" id="start-queue-ready">1</td>' in queue
    assert 'href="/admin/payments/postingqueueentry/?status=DEAD"' in queue
    jobs = panel(html, "start-jobs")
    assert "No runs yet." in jobs and reverse("admin:core_jobrun_changelist") in jobs
    assert 'id="start-desk"' not in html and 'id="start-today"' not in html


def test_a_failing_panel_shows_a_note_and_the_rest_of_the_page(world, monkeypatch):
    def broken(request):
        raise RuntimeError("store down")

    monkeypatch.setattr(admin_site, "_start_panels", dict(admin_site._start_panels))
    admin_site.register_start_panel("broken", broken, order=1)
    html = start_page(world.users["BS"])
    assert "This panel cannot be shown now" in html
    assert 'id="start-desk"' in html
