"""Grouping add-ons under their base, paging 300 subscriptions, and the overview figures."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from cards.examples import NOW, sample_subscriptions
from cards.subscriptions import subscription_list_card
from services.models import SubscriptionStatus
from services.subscriptions import group_with_addons, paginate, summarize


def _many(n: int):
    template = sample_subscriptions()[0]
    views = []
    for i in range(1, n + 1):
        parent = None if i % 3 == 1 else i - (i - 1) % 3  # every base has two add-ons
        views.append(replace(template, id=i, name=f"Product {i:03d} with a realistic long name", parent_id=parent))
    return views


def test_addons_follow_their_base():
    groups = group_with_addons(sample_subscriptions())
    by_base = {g.base.name: [a.name for a in g.addons] for g in groups}
    assert by_base["Microsoft 365 Business Premium"] == ["Microsoft 365 Copilot", "Teams Phone Standard"]
    assert "Microsoft 365 Copilot" not in by_base


def test_an_addon_whose_base_is_missing_stands_alone():
    views = [v for v in sample_subscriptions() if v.id != 1]
    names = [g.base.name for g in group_with_addons(views)]
    assert "Microsoft 365 Copilot" in names


def test_inactive_subscriptions_come_last():
    views = sample_subscriptions()
    views[0] = replace(views[0], status=SubscriptionStatus.EXPIRED)
    assert group_with_addons(views)[-1].base.id == 1


def test_300_subscriptions_page_under_the_teams_size_limit():
    groups = group_with_addons(_many(300))
    first = paginate(groups, 1, 10)
    seen = []
    for number in range(1, first.count + 1):
        page = paginate(groups, number, 10)
        size = len(json.dumps(subscription_list_card("Fabrikam GmbH", page)).encode())
        assert size < 20_000, f"page {number} is {size} bytes"
        seen += [page_group.base.id for page_group in page.groups]
        seen += [a.id for page_group in page.groups for a in page_group.addons]
    assert sorted(seen) == list(range(1, 301))
    assert first.count == 34 and first.total_subscriptions == 300  # 3 groups of 3 a page


@given(sizes=st.lists(st.integers(min_value=0, max_value=12), min_size=0, max_size=60), per_page=st.integers(min_value=1, max_value=25))
def test_paging_never_splits_a_group_and_loses_nothing(sizes, per_page):
    template = sample_subscriptions()[0]
    views, next_id = [], 1
    for addons in sizes:
        base_id = next_id
        views.append(replace(template, id=base_id, name=f"Base {base_id:04d}", parent_id=None))
        next_id += 1
        for _ in range(addons):
            views.append(replace(template, id=next_id, name=f"Addon {next_id:04d}", parent_id=base_id))
            next_id += 1
    groups = group_with_addons(views)
    pages = [paginate(groups, n, per_page) for n in range(1, paginate(groups, 1, per_page).count + 1)]
    flattened = [g for p in pages for g in p.groups]
    assert flattened == groups
    for p in pages:
        rows = sum(1 + len(g.addons) for g in p.groups)
        assert rows <= per_page or len(p.groups) == 1


def test_page_numbers_out_of_range_are_clamped():
    groups = group_with_addons(_many(30))
    assert paginate(groups, 0, 10).number == 1
    assert paginate(groups, 99, 10).number == paginate(groups, 1, 10).count


def test_overview_figures():
    views = sample_subscriptions()
    overview = summarize(views, pending_changes=2, today=NOW.date())
    assert overview.active_subscriptions == 6
    assert overview.active_licenses == 45 + 10 + 12 + 3 + 8 + 20
    assert overview.active_trials == 1
    assert overview.pending_changes == 2
    # Visio (annual, auto-renew off) ends 9 Dec; the Power BI trial 11 Dec; Teams Phone (monthly) 19 Dec.
    assert overview.ending_soon == 3 and overview.ending_soon_not_renewing == 1
    assert overview.ending_soon_names == ("Visio Plan 2", "Power BI Pro", "Teams Phone Standard")


def test_overview_ignores_inactive_and_does_not_charge_for_trials():
    views = sample_subscriptions()
    views[5] = replace(views[5], status=SubscriptionStatus.SUSPENDED)
    overview = summarize(views, 0, NOW.date())
    assert overview.active_subscriptions == 5
    trial_cost = next(v.monthly_cost for v in views if v.is_trial)
    assert overview.monthly_cost == sum(v.monthly_cost for v in views[:5]) - trial_cost
