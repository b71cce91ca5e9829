#!/usr/bin/env python3
"""Writes the Grafana dashboards of entra-mfa-exporter (dashboards/*.json).

Built with Grafana's Foundation SDK (`grafana-foundation-sdk`, pinned in
dashboards/requirements.txt: the types and builders of Grafana 11.6, schemaVersion 41):
a panel can only be given options its plugin has, with values from the SDK's enums.
Edit this file, run `python3 dashboards/build.py`, commit both. `--check` (scripts/test)
fails when a JSON file differs from what this file writes, or a dashboard breaks the
convention below where a machine can tell. Every query must return data against a real
Prometheus scraping `entra-mfa-exporter --demo` (tests/e2e_prometheus.py runs them all).

Panel convention (new panels follow it):
- Title: what is counted and over whom, in sentence case ("Member MFA capable", "Admins
  without MFA"); "by X" for a breakdown, "per hour" for a counter's increase.
- Description: what the number is and over which users; the report it comes from when
  that is not the registration details; the alert that watches it; the config key that
  turns it on when it is opt-in. Every panel has one (`--check`).
- Query: on the `datasource` variable (`--check`), selecting `tenant=~"$tenant"` (overview,
  health) or `tenant="$tenant"` (tenant detail). A share divides by `(... > 0)`, so an
  empty group is no data rather than NaN. Counters are `increase(...[1h])`: they move once
  per refresh (hourly or slower), so per-second rates would be mostly empty.
- Unit (`--check`): `percentunit` for a share (0-1, 1 decimal), `short` for a count
  (0 decimals), `s` for an age or a duration.
- Thresholds: a panel showing what an alert watches colours at that alert's threshold,
  read from the `entra-thresholds` group of deploy/prometheus/rules.yml (THRESHOLDS), not
  copied: coverage is green from mfa_coverage_target_ratio, orange in the 10 points below,
  red under that (coverage()); admins without MFA are red above admins_without_mfa; a
  snapshot is red when older than report_stale_seconds. A panel no alert watches has one
  colour, or a comment here saying where its steps come from.
- Layout: a row per question; its panels fill the 24 columns exactly (`--check`).
"""

import json
import re
import sys
from pathlib import Path

try:
    import yaml
    from grafana_foundation_sdk.builders import bargauge, gauge, piechart, prometheus, stat, table, timeseries
    from grafana_foundation_sdk.builders import common as cb, dashboard as db
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import common as cm, dashboard as dm
    from grafana_foundation_sdk.models.piechart import PieChartLabels, PieChartLegendValues, PieChartType
    from grafana_foundation_sdk.models.prometheus import PromQueryFormat
except ImportError as e:
    sys.exit(f"dashboards/build.py: {e}: run `python3 -m pip install -r dashboards/requirements.txt`")

HERE = Path(__file__).resolve().parent
RULES = HERE.parent / "deploy" / "prometheus" / "rules.yml"
DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
MEMBERS = 'user_type="member"'
FEATURE_NAMES = {
    "mfa_registered": "MFA registered",
    "mfa_capable": "MFA capable",
    "sspr_registered": "SSPR registered",
    "sspr_enabled": "SSPR enabled",
    "sspr_capable": "SSPR capable",
    "passwordless_capable": "Passwordless capable",
    "system_preferred_mfa_enabled": "System-preferred MFA enabled",
}


def recorded_thresholds():
    """The `entra:threshold:NAME` constants (`vector(N)`) of rules.yml, by NAME."""
    groups = {g["name"]: g["rules"] for g in yaml.safe_load(RULES.read_text())["groups"]}
    found = {}
    for rule in groups["entra-thresholds"]:
        m = re.fullmatch(r"vector\((-?[0-9.]+)\)", str(rule["expr"]).strip())
        if not m:
            sys.exit(f"{RULES}: {rule['record']}: expected vector(NUMBER), found {rule['expr']!r}")
        n = float(m.group(1))
        found[rule["record"].removeprefix("entra:threshold:")] = int(n) if n.is_integer() else n
    return found


THRESHOLDS = recorded_thresholds()


def steps(*pairs):
    """Absolute thresholds from (value, colour) pairs, the first with value None (the base)."""
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps([dm.Threshold(value=v, color=c) for v, c in pairs])


def coverage():
    target = THRESHOLDS["mfa_coverage_target_ratio"]
    return steps((None, "red"), (round(target - 0.1, 6), "orange"), (target, "green"))


def red_above(threshold):
    """Green up to `threshold`, red from the next whole number (for counts)."""
    return steps((None, "green"), (threshold + 1, "red"))


def query(expr, legend="__auto", ref="A", instant=False, table=False):
    q = prometheus.Dataquery().datasource(DS).ref_id(ref).expr(expr).legend_format(legend)
    q = q.instant() if instant else q.range()
    return q.format(PromQueryFormat.TABLE) if table else q


def table_queries(*exprs):
    """An instant table query per expression, refIds A, B, ...: a merged table's columns."""
    return [query(e, ref=chr(ord("A") + i), instant=True, table=True) for i, e in enumerate(exprs)]


def column_names(*names):
    """`Value #A`, `Value #B`, ... (the columns of table_queries() once merged) renamed to `names`."""
    return {f"Value #{chr(ord('A') + i)}": name for i, name in enumerate(names)}


def panel(p, title, size, description, targets, unit, thresholds=None, min_=None, max_=None, decimals=None, color=None):
    """Sets what every panel has. Colours follow the thresholds when there are any, else
    the classic palette, unless `color` says otherwise."""
    p.title(title).span(size[0]).height(size[1]).description(description).datasource(DS).targets(targets).unit(unit)
    p.thresholds(thresholds or steps((None, "green")))
    color = color or (dm.FieldColorModeId.THRESHOLDS if thresholds else dm.FieldColorModeId.PALETTE_CLASSIC)
    p.color_scheme(db.FieldColor().mode(color))
    for value, setter in ((min_, p.min), (max_, p.max), (decimals, p.decimals)):
        if value is not None:
            setter(value)
    return p


def last():
    return cb.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)


def share_gauge(title, size, description, expr):
    """A gauge per tenant of a share, coloured by coverage()."""
    p = gauge.Panel().reduce_options(last()).orientation(cm.VizOrientation.AUTO).sizing(cm.BarGaugeSizing.AUTO)
    return panel(p, title, size, description, [query(expr, "{{tenant}}", instant=True)], "percentunit", coverage(), 0, 1, 1)


def stat_panel(title, size, description, expr, legend, unit="short", thresholds=None, decimals=0, min_=None, max_=None):
    p = stat.Panel().reduce_options(last()).orientation(cm.VizOrientation.AUTO).graph_mode(cm.BigValueGraphMode.NONE)
    p.color_mode(cm.BigValueColorMode.VALUE if thresholds else cm.BigValueColorMode.NONE)
    p.justify_mode(cm.BigValueJustifyMode.AUTO).text_mode(cm.BigValueTextMode.AUTO)
    return panel(p, title, size, description, [query(expr, legend, instant=True)], unit, thresholds, min_, max_, decimals)


def share_stat(title, size, description, expr, thresholds=None, legend="{{tenant}}"):
    return stat_panel(title, size, description, expr, legend, "percentunit", thresholds or coverage(), 1, 0, 1)


def series(title, size, description, expr, legend, unit="short", min_=0, max_=None, thresholds=None, stack=False):
    """A time series of one range query, on a dashed line at its thresholds if it has any."""
    p = timeseries.Panel().draw_style(cm.GraphDrawStyle.LINE).line_width(1).fill_opacity(10).show_points(cm.VisibilityMode.NEVER)
    p.span_nulls(True).axis_soft_min(0)
    p.stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL if stack else cm.StackingMode.NONE).group("A"))
    if thresholds:
        p.thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED))
    table_legend = cb.VizLegendOptions().display_mode(cm.LegendDisplayMode.TABLE).placement(cm.LegendPlacement.RIGHT).show_legend(True)
    p.legend(table_legend.calcs(["lastNotNull"]))
    p.tooltip(cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING))
    targets = [query(expr, legend)]
    return panel(p, title, size, description, targets, unit, thresholds, min_, max_, color=dm.FieldColorModeId.PALETTE_CLASSIC)


def bars(title, size, description, expr, legend, unit="short", thresholds=None, min_=None, max_=None, decimals=0):
    """Horizontal bars of one instant query: counts, unless told otherwise."""
    p = bargauge.Panel().reduce_options(last()).orientation(cm.VizOrientation.HORIZONTAL).display_mode(cm.BarGaugeDisplayMode.GRADIENT)
    p.value_mode(cm.BarGaugeValueMode.COLOR).name_placement(cm.BarGaugeNamePlacement.AUTO).sizing(cm.BarGaugeSizing.AUTO)
    return panel(p, title, size, description, [query(expr, legend, instant=True)], unit, thresholds, min_, max_, decimals)


def share_bars(title, size, description, expr, legend):
    return bars(title, size, description, expr, legend, "percentunit", coverage(), 0, 1, 1)


def transform(kind, **options):
    return dm.DataTransformerConfig(id_val=kind, options=options)


def merged(columns, exclude, first=()):
    """Merges a table's queries into one row per series: `columns` renames `Value #A` ...,
    `first` puts labels before them, `exclude` hides labels."""
    order = {name: i for i, name in enumerate([*first, *columns])}
    return [transform("merge"), transform("organize", excludeByName=dict.fromkeys(exclude, True), indexByName=order, renameByName=columns)]


def table_panel(title, size, description, targets, unit, transformations, thresholds=None, decimals=None, overrides=()):
    """A table; with thresholds its cells are coloured by them. `overrides`: (column, {property: value})."""
    p = table.Panel().cell_height(cm.TableCellHeight.SM).transformations(transformations)
    if thresholds:
        p.cell_options(cm.TableColoredBackgroundCellOptions(mode=cm.TableCellBackgroundDisplayMode.BASIC))
    for name, props in overrides:
        p.override_by_name(name, [dm.DynamicConfigValue(id_val=k, value=v) for k, v in props.items()])
    return panel(p, title, size, description, targets, unit, thresholds, decimals=decimals)


def ratio(feature, sel, by="tenant"):
    """PromQL: users with `feature` / users, over the users matching `sel`, by `by`."""
    return (
        f'sum by ({by}) (entra_users_with_feature{{{sel}, feature="{feature}"}})\n'
        f"  / (sum by ({by}) (entra_users{{{sel}}}) > 0)"
    )


def admins_without_mfa(sel, by=""):
    """PromQL: admins (any user type) matching `sel` who are not MFA capable."""
    agg = f"sum by ({by})" if by else "sum"
    return (
        f'{agg} (entra_users{{{sel}, role="admin"}})\n'
        f'  - {agg} (entra_users_with_feature{{{sel}, role="admin", feature="mfa_capable"}})'
    )


def coverage_by_feature(sel, features=None):
    """PromQL: per feature (those matching the regex `features`, or all), the share of the
    users matching `sel` for whom it holds."""
    only = f', feature=~"{features}"' if features else ""
    return (
        f"sum by (feature) (entra_users_with_feature{{{sel}{only}}})\n"
        f"  / ignoring (feature) group_left ()\n  (sum(entra_users{{{sel}}}) > 0)"
    )


def admins_without_mfa_stat(sel, size, description):
    threshold = red_above(THRESHOLDS["admins_without_mfa"])
    return stat_panel("Admins without MFA", size, description, admins_without_mfa(sel), "admins without MFA", thresholds=threshold)


def member_coverage_by_feature(sel, size, description):
    return series("Member coverage by feature", size, description, coverage_by_feature(sel), "{{feature}}", "percentunit", max_=1)


def tenant_variable(metric, multi):
    v = db.QueryVariable("tenant").label("Tenant").description("The exporter's `tenant` label (the `name` of the tenant in its config).")
    v.datasource(DS).query({"query": f"label_values({metric}, tenant)", "refId": "tenant"}).hide(dm.VariableHide.DONT_HIDE)
    v.refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).regex("").sort(dm.VariableSort.ALPHABETICAL_ASC).options([])
    v.multi(multi).include_all(multi)
    return v.all_value(".*") if multi else v


def dashboard(uid, title, description, tags, tenant_var, sections, refresh="5m", time_from="now-7d"):
    """A dashboard of `sections`, (row title, panels) pairs; the SDK lays the panels out
    left to right, a new line when one is full."""
    d = db.Dashboard(title).uid(uid).description(description).tags(["entra", "mfa", *tags]).editable().version(1)
    d.tooltip(dm.DashboardCursorSync.CROSSHAIR).refresh(refresh).time(time_from, "now").timezone(cm.TimeZoneBrowser)
    d.fiscal_year_start_month(0).live_now(False).week_start("")
    grafana = dm.DataSourceRef(type_val="grafana", uid="-- Grafana --")
    d.annotation(
        db.AnnotationQuery().name("Annotations & Alerts").type("dashboard").built_in(1).datasource(grafana).enable(True).hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
    )
    d.link(
        db.DashboardLink("Entra dashboards").type(dm.DashboardLinkType.DASHBOARDS).tags(["entra"]).as_dropdown(True).include_vars(True)
        .keep_time(True).icon("external link").target_blank(False).tooltip("").url("")
    )
    d.with_variable(db.DatasourceVariable("datasource").label("Data source").type("prometheus").hide(dm.VariableHide.DONT_HIDE).regex(""))
    d.with_variable(tenant_var)
    for row, panels in sections:
        d.with_row(db.Row(row))
        for p in panels:
            d.with_panel(p)
    built = d.build()
    for i, p in enumerate(built.panels, 1):
        p.id_val = i
        # The SDK writes out the table-wide footer that Grafana 12 replaced with a per-field
        # one: Grafana 13's schema (the tsc check in dashboards/check/) has no options.footer.
        if p.type_val == "table":
            p.options.footer = None
    for v in built.templating.list_val:
        # Interval-variable fields the SDK writes on every variable; Grafana 13's have none.
        v.auto = v.auto_min = v.auto_count = None
    return built


def overview():
    t = 'tenant=~"$tenant"'
    sel = f"{t}, {MEMBERS}"
    per_tenant = " One gauge per tenant."
    tenants = column_names("Users", "Members MFA capable", "Members SSPR capable", "Members passwordless capable", "Admins without MFA")
    count = {"unit": "short", "decimals": 0}
    description = "MFA, SSPR and passwordless coverage across every tenant the entra-mfa-exporter watches."
    return dashboard("entra-mfa-overview", "Entra MFA overview", description, ["overview"], tenant_variable("entra_users", multi=True), [
        ("Coverage now", [
            share_gauge(
                "Member MFA capable", (5, 7),
                "Share of member users who are MFA capable: registered a strong method allowed by policy. The alerts EntraMfaCoverageBelowTarget and EntraMfaCoverageDropped watch this ratio." + per_tenant,
                ratio("mfa_capable", sel),
            ),
            share_gauge("Member MFA registered", (5, 7), "Share of member users who registered at least one MFA method." + per_tenant, ratio("mfa_registered", sel)),
            share_gauge(
                "Member SSPR capable", (5, 7),
                "Share of member users who are registered for and allowed to use self-service password reset." + per_tenant,
                ratio("sspr_capable", sel),
            ),
            share_gauge(
                "Member passwordless capable", (5, 7),
                "Share of member users who registered a passwordless method (passkey, Windows Hello, Authenticator phone sign-in) allowed by policy." + per_tenant,
                ratio("passwordless_capable", sel),
            ),
            admins_without_mfa_stat(
                t, (4, 7),
                "Users holding an admin role (members and guests) who are not MFA capable, summed over the selected tenants. "
                f"EntraAdminWithoutMfa fires above {THRESHOLDS['admins_without_mfa']}.",
            ),
        ]),
        ("Coverage over time", [
            series(
                "Member MFA capable by tenant", (12, 9),
                "Share of member users who are MFA capable, per tenant. Steps follow report refreshes (hourly by default); "
                f"a fall of more than {THRESHOLDS['mfa_coverage_drop_points']} points against a week earlier fires EntraMfaCoverageDropped.",
                ratio("mfa_capable", sel), "{{tenant}}", "percentunit", max_=1, thresholds=coverage(),
            ),
            member_coverage_by_feature(sel, (12, 9), "Share of member users of all selected tenants together for whom each feature holds."),
        ]),
        ("Weakest tenants", [
            share_bars(
                "Weakest tenants: member MFA capable", (10, 9), "The ten selected tenants with the lowest share of MFA-capable members.",
                f"bottomk(10,\n  {ratio('mfa_capable', sel)}\n)", "{{tenant}}",
            ),
            table_panel(
                "Tenants", (14, 9), "Every selected tenant: users, member coverage per feature and admins without MFA. Sort by a column to find the weakest.",
                table_queries(
                    f"sum by (tenant) (entra_users{{{t}}})", ratio("mfa_capable", sel), ratio("sspr_capable", sel), ratio("passwordless_capable", sel),
                    admins_without_mfa(t, by="tenant"),
                ),
                "percentunit", merged(tenants, ["Time"], first=["tenant"]), decimals=1, overrides=[("Users", count), ("Admins without MFA", count)],
            ),
        ]),
    ])


def usage_and_summary_sections(t):
    """Tenant-detail rows on the reports besides the registration details: SSPR and
    registration activity (credential_usage_summary, user_credential_usage_details,
    user_events_summary), the opt-in admin list, and the count and summary reports. A
    tenant that does not enable a report shows "No data" there; each description names
    the report to enable."""
    act = f"entra_credential_usage_activities{{{t}"
    labels = {"Time": True, "__name__": True, "job": True, "instance": True, "tenant": True}
    summary = "per queried user type and role, from Microsoft's own summary"
    usage = "From the credential_usage_summary report."
    return [
        ("Self-service password reset and registration activity", [
            share_stat(
                "SSPR reset failure rate", (4, 8),
                f"Share of self-service password resets that failed in the usage period (`usage_period`, default 30 days). {usage}",
                f'sum({act}, feature="reset", result="failure"}})\n  / (sum({act}, feature="reset"}}) > 0)',
                # No alert watches reset failures: orange from one in ten, red from one in four.
                steps((None, "green"), (0.1, "orange"), (0.25, "red")), "failure rate",
            ),
            bars(
                "SSPR resets by result", (6, 8), f"Self-service password resets in the usage period, by result. {usage}",
                f'sum by (result) ({act}, feature="reset"}})', "{{result}}",
            ),
            bars(
                "SSPR reset failures by method", (7, 8),
                f"Failed self-service password resets in the usage period, by the method used to verify: a method that fails often needs looking at (lost phones, outdated numbers). {usage}",
                # Any failure is red: no alert watches them.
                f'sort_desc(sum by (method) ({act}, feature="reset", result="failure"}}))', "{{method}}", thresholds=red_above(0),
            ),
            bars(
                "Activity by feature and result", (7, 8), f"Registrations, resets and password changes in the usage period, by result. {usage}",
                f"sum by (feature, result) ({act}}})", "{{feature}} {{result}}",
            ),
            series(
                "Usage events by feature and result", (12, 8),
                "Registration and reset events the per-user usage reports returned (user_credential_usage_details, or its successor user_events_summary), by report, feature and result.",
                f"sum by (source, feature, result) (entra_credential_usage_events{{{t}}})", "{{source}} {{feature}} {{result}}",
            ),
            table_panel(
                "Time since the last event", (12, 8),
                "How long ago the newest event of each feature and result happened, per usage report. A long-quiet reset failure is good news; a long-quiet success may mean SSPR is not used.",
                [query(f"time() - entra_credential_usage_last_event_timestamp_seconds{{{t}}}", instant=True, table=True)], "s",
                [transform("organize", excludeByName=labels, renameByName={"Value": "Since last event"})],
            ),
        ]),
        ("Opt-in and summary reports", [
            table_panel(
                "Admins without MFA (list)", (8, 10),
                "Each user holding an admin role who is not MFA capable, by user principal name. Only for tenants with `admins_without_mfa = true`, at most `max_listed_admins` (default 100).",
                [query(f"entra_admin_without_mfa_info{{{t}}}", instant=True, table=True)], "short",
                [transform("organize", excludeByName={**labels, "Value": True}, renameByName={"user_principal_name": "User principal name"})],
            ),
            share_bars(
                "Registration counts", (8, 10),
                "Share of all users registered, enabled and capable for SSPR, MFA registered and passwordless capable, as counted by Microsoft (credential_user_registration_count report).",
                f"entra_credential_registration_users{{{t}}}\n  / on (tenant) group_left ()\n"
                f"  (entra_credential_registration_total_users{{{t}}} > 0)",
                "{{status}}",
            ),
            share_bars(
                "Summary: features", (8, 10), f"Share of users for whom each feature holds, {summary} (users_registered_by_feature; delegated permission only).",
                f"entra_reported_users_with_feature{{{t}}}\n  / on (tenant, user_types, user_roles) group_left ()\n"
                f'  (entra_reported_users{{{t}, report="users_registered_by_feature"}} > 0)',
                "{{user_types}}/{{user_roles}} {{feature}}",
            ),
            bars(
                "Summary: methods", (24, 10), f"Users with each method registered, {summary} (users_registered_by_method; delegated permission only).",
                f"sort_desc(entra_reported_users_with_method{{{t}}})", "{{user_types}}/{{user_roles}} {{method}}",
            ),
        ]),
    ]


def daily_sections(t):
    """Issue 15: tenant-detail rows on the app-only daily reports (user_mfa_sign_in_summary,
    user_password_resets_and_changes_summary): the newest complete UTC day of each, so
    the lines step once a day."""
    day = "The newest complete UTC day (entra_daily_sign_ins_day_timestamp_seconds says which), from the user_mfa_sign_in_summary report."
    return [
        ("Daily sign-ins and password events", [
            # EntraMfaSignInRatioDropped watches the fall against 7 days ago, not a level:
            # one colour.
            share_stat(
                "MFA share of sign-ins", (4, 8),
                f"Share of the day's sign-ins that used multi-factor authentication (entra:mfa_sign_in:ratio). {day} EntraMfaSignInRatioDropped fires when it falls.",
                f"entra:mfa_sign_in:ratio{{{t}}}", steps((None, "blue")), legend="MFA share",
            ),
            series(
                "Daily sign-ins: single vs multi factor", (10, 8), f"Sign-ins of the day by factor. {day}",
                f'sum by (factor) (entra_daily_sign_ins{{{t}, factor!="total"}})', "{{factor}}", stack=True,
            ),
            bars(
                "Password events by kind", (10, 8),
                "Password resets by admins, self-service resets and self-service changes on the newest complete UTC day, from the user_password_resets_and_changes_summary report.",
                f"sum by (kind) (entra_daily_password_events{{{t}}})", "{{kind}}",
            ),
        ]),
        ("Registration activity and sign-ins by method (delegated sign-in)", [
            bars(
                "Registration activity by method", (12, 9),
                "Registrations and resets over the usage period (`usage_period`) by method and result, from the user_registration_activity report, the successor of credential_usage_summary. Needs the tenant's delegated sign-in (`refresh_token_file`, `entra-mfa-exporter login`).",
                f"sort_desc(sum by (method, result) (entra_registration_activities{{{t}}}))", "{{method}} {{result}}",
            ),
            bars(
                "Sign-ins by method", (12, 9),
                "Successful sign-ins over the usage period by authentication method, from the user_sign_ins_by_auth_method_summary report. Needs the tenant's delegated sign-in (`refresh_token_file`, `entra-mfa-exporter login`).",
                f"sort_desc(sum by (method) (entra_sign_ins_by_method{{{t}}}))", "{{method}}",
            ),
        ]),
    ]


def strength_sections(t):
    """Tenant-detail row on method strength (the strength ladder) and how fresh Microsoft's
    registration data is (issue 13b). Only the v1.0 user_registration_details source has
    these: a tenant on the legacy source shows "No data" here."""
    by_strength = f"entra_users_by_strength{{{t}}}"
    stale = THRESHOLDS["registration_data_stale_seconds"]
    labels = {"Time": True, "__name__": True, "job": True, "instance": True, "tenant": True, "Value": True}
    return [
        ("Method strength and data freshness", [
            series(
                "Users by strongest method and user type", (12, 9),
                "The strength ladder: users by their strongest registered method (none, mfa, passwordless, phishing_resistant) and user type, "
                "stacked, so the bands add up to all users. Synced passkeys count as phishing-resistant, as Microsoft classes them.",
                f"sum by (user_type, strength) ({by_strength})", "{{user_type}} {{strength}}", stack=True,
            ),
            # No alert watches it (there is no phishing-resistant target): one colour.
            share_stat(
                "Members phishing-resistant", (4, 9),
                "Share of member users whose strongest registered method is phishing-resistant (FIDO2 key, passkey, Windows Hello, platform credential, CBA multifactor): entra:phishing_resistant:ratio.",
                f'sum(entra_users_by_strength{{{t}, {MEMBERS}, strength="phishing_resistant"}})\n  / (sum(entra_users{{{t}, {MEMBERS}}}) > 0)',
                steps((None, "blue")), "phishing-resistant",
            ),
            stat_panel(
                "Registration data age", (4, 9),
                "How old Microsoft's newest lastUpdatedDateTime in the registration report is: the report lags by hours even when the exporter fetched it just now. "
                f"EntraRegistrationDataStale fires above {stale / 3600:g}h.",
                f"time() - max(entra_registration_data_updated_timestamp_seconds{{{t}}})", "data age", "s",
                steps((None, "green"), (stale, "red")), decimals=None,
            ),
            table_panel(
                "Unclassified methods", (4, 9),
                "Method strings in the last report that the strength table does not know (a method Microsoft added): they count as none until the exporter learns them.",
                [query(f"entra_exporter_unclassified_method_info{{{t}}}", instant=True, table=True)], "short",
                [transform("organize", excludeByName=labels, renameByName={"method": "Method"})],
            ),
        ]),
    ]


def tenant_detail():
    t = 'tenant="$tenant"'
    sel = f"{t}, {MEMBERS}"
    admins = f'{t}, role="admin"'
    by_group = (
        f"label_join(\n  sum by (user_type, role, feature) (entra_users_with_feature{{{t}}})\n    / ignoring (feature) group_left ()\n"
        f'  (sum by (user_type, role) (entra_users{{{t}}}) > 0),\n  "group", " / ", "user_type", "role"\n)'
    )
    pie = piechart.Panel().reduce_options(last()).pie_type(PieChartType.DONUT).display_labels([PieChartLabels.PERCENT])
    pie.legend(
        piechart.PieChartLegendOptions().display_mode(cm.LegendDisplayMode.TABLE).placement(cm.LegendPlacement.RIGHT).show_legend(True)
        .values([PieChartLegendValues.VALUE, PieChartLegendValues.PERCENT]).calcs([])
    )
    pie.tooltip(cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.SINGLE).sort(cm.SortOrder.NONE))
    member_shares = {"mfa_capable": "MFA capable", "mfa_registered": "MFA registered", "sspr_capable": "SSPR capable", "passwordless_capable": "passwordless capable"}
    description = "One tenant in detail: features by user type and role, registered and preferred methods, admins and the trend."
    return dashboard("entra-mfa-tenant", "Entra MFA tenant detail", description, ["tenant"], tenant_variable("entra_users", multi=False), [
        ("Coverage now", [
            stat_panel("Users", (4, 5), "Users in the registration report (Graph leaves out disabled users).", f"sum(entra_users{{{t}}})", "users"),
            *[share_stat(f"Members {name}", (4, 5), f"Share of member users who are {FEATURE_NAMES[f]}.", ratio(f, sel)) for f, name in member_shares.items()],
            # Every admin should be MFA capable: EntraAdminWithoutMfa fires on the first one who is not.
            share_stat(
                "Admins MFA capable", (4, 5), "Share of users holding an admin role (members and guests) who are MFA capable; every admin should be.",
                ratio("mfa_capable", admins), steps((None, "red"), (1, "green")),
            ),
        ]),
        ("By user type and role", [
            table_panel(
                "Features by user type and role", (16, 8),
                "For each user type and role (`unknown` role: Graph did not say whether the user is an admin), the share of its users for whom each feature holds.",
                [query(by_group, instant=True, table=True)], "percentunit",
                [
                    transform("groupingToMatrix", columnField="feature", rowField="group", valueField="Value"),
                    transform("organize", renameByName={"group\\feature": "user type / role", **FEATURE_NAMES}),
                ],
                coverage(), 1,
            ),
            bars(
                "Users by type and role", (8, 8), "Users in the registration report by user type and role.",
                f"sum by (user_type, role) (entra_users{{{t}}})", "{{user_type}} / {{role}}",
            ),
        ]),
        ("Methods", [
            bars(
                "Methods registered", (8, 10), "Users with each authentication method registered, as Graph names the method. A user with several methods counts under each.",
                f"sort_desc(sum by (method) (entra_users_with_method{{{t}}}))", "{{method}}",
            ),
            panel(
                pie, "Preferred MFA method", (8, 10),
                "Users by their preferred (default) secondary method; `none` when they have not chosen one. Not reported by the legacy credential_user_registration_details source.",
                [query(f"sum by (method) (entra_users_by_preferred_method{{{t}}})", "{{method}}", instant=True)], "short", decimals=0,
            ),
            bars(
                "Registered methods per user", (8, 10), "How many distinct methods users have registered: 0 means no method at all, 1 means no fallback when that one is lost.",
                f"sum by (methods) (entra_users_by_registered_methods{{{t}}})", "{{methods}} methods",
            ),
        ]),
        *strength_sections(t),
        ("Admins", [
            series(
                "Admin coverage", (16, 8), "Share of users holding an admin role (members and guests) who are MFA registered, MFA capable and passwordless capable.",
                coverage_by_feature(admins, "mfa_registered|mfa_capable|passwordless_capable"), "{{feature}}", "percentunit", max_=1,
            ),
            admins_without_mfa_stat(
                t, (8, 8),
                "Users holding an admin role who are not MFA capable. Set `admins_without_mfa = true` for the tenant to list them in entra_admin_without_mfa_info.",
            ),
        ]),
        ("Trend", [
            member_coverage_by_feature(sel, (12, 9), "Share of member users for whom each feature holds, over time. Steps follow report refreshes."),
            series(
                "Users by type", (12, 9), "Users in the registration report by user type, over time.",
                f"sum by (user_type) (entra_users{{{t}}})", "{{user_type}}", stack=True,
            ),
        ]),
        *group_sections(t),
        *privileged_sections(t),
        *usage_and_summary_sections(t),
        *daily_sections(t),
        *policy_sections(t),
    ])


def on_off(off, on):
    """Value mappings of a 0/1 gauge: 0 reads `off` (red), 1 reads `on` (green)."""
    results = {"0": dm.ValueMappingResult(text=off, color="red", index=0), "1": dm.ValueMappingResult(text=on, color="green", index=1)}
    return [dm.ValueMap(options=results)]


def policy_sections(t):
    """Issue 14b: the authentication methods policy (report authentication_methods_policy):
    which methods the policy enables, and whether the registration campaign runs. No alert
    watches them (the contract has none): enabled is green, disabled red, as a reading aid."""
    hidden = {"Time": True, "__name__": True, "job": True, "instance": True, "tenant": True}
    on_off_steps = steps((None, "red"), (1, "green"))
    why = "A method the policy disables cannot be registered, so coverage by it stays at zero."
    methods = table_panel(
        "Methods enabled by policy", (14, 8),
        "Every method configuration of the tenant's authentication methods policy (the configuration id as Graph sends it; an external method shows its id) "
        f"and whether the policy enables it for anyone, from the authentication_methods_policy report (needs Policy.Read.All). {why}",
        [query(f"entra_auth_method_enabled{{{t}}}", instant=True, table=True)], "short",
        [
            transform("organize", excludeByName=hidden, renameByName={"method": "Method", "Value": "Enabled"}),
            transform("sortBy", sort=[{"field": "Enabled", "desc": False}]),
        ],
        on_off_steps, 0,
    )
    methods.mappings(on_off("disabled", "enabled"))
    campaign = stat_panel(
        "Registration campaign", (5, 8),
        "Whether the registration campaign (the sign-in nudge to register Microsoft Authenticator) is on: only its state enabled counts; "
        "default (never set) and disabled are off. A campaign left off is a common reason MFA coverage stalls.",
        f"max(entra_auth_method_registration_campaign_enabled{{{t}}})", "campaign", thresholds=on_off_steps,
    )
    campaign.mappings(on_off("off", "on"))
    enabled = stat_panel(
        "Methods enabled", (5, 8),
        f"How many of the policy's method configurations are enabled, of all of them. {why}",
        f"sum(entra_auth_method_enabled{{{t}}})", "enabled",
    )
    enabled.with_target(query(f"count(entra_auth_method_enabled{{{t}}})", "configured", ref="B", instant=True))
    return [("Authentication methods policy", [methods, campaign, enabled])]


def group_ratio(feature, t):
    """PromQL: per configured group, members in the report for whom `feature` holds / all of them."""
    return (
        f'sum by (group) (entra_group_users_with_feature{{{t}, feature="{feature}"}})\n'
        f"  / (sum by (group) (entra_group_users{{{t}}}) > 0)"
    )


def group_sections(t):
    """Per-group coverage (config `groups`), worst first; exclusions (`exclude_groups`, `exclude_users`)."""
    count = {"unit": "short", "decimals": 0}
    columns = {
        "Value #A": "Members", "Value #B": "In the report", "Value #C": "MFA capable", "Value #D": "Passwordless capable",
        "Value #E": "SSPR capable", "Value #F": "Phishing-resistant",
    }
    phishing_resistant = (
        f'sum by (group) (entra_group_users_by_strength{{{t}, strength="phishing_resistant"}})\n'
        f"  / (sum by (group) (entra_group_users{{{t}}}) > 0)"
    )
    return [
        ("Groups", [
            share_bars(
                "Groups: MFA capable, worst first", (10, 10),
                "For each configured group (`groups`), the share of its members in the registration report who are MFA capable; excluded users left out.",
                f"sort(\n  {group_ratio('mfa_capable', t)}\n)", "{{group}}",
            ),
            table_panel(
                "Groups", (14, 10),
                "Every configured group: transitive user members (exclusions left out), those of them in the registration report, and their coverage; phishing-resistant: their strongest method is a FIDO2 key, passkey, Windows Hello or a multifactor certificate. Sorted worst MFA coverage first.",
                table_queries(
                    f"sum by (group) (entra_group_members{{{t}}})", f"sum by (group) (entra_group_users{{{t}}})",
                    group_ratio("mfa_capable", t), group_ratio("passwordless_capable", t), group_ratio("sspr_capable", t),
                    phishing_resistant,
                ),
                "percentunit",
                [*merged(columns, ["Time"], first=["group"]), transform("sortBy", sort=[{"field": "MFA capable", "desc": False}])],
                coverage(), 1, overrides=[("Members", count), ("In the report", count)],
            ),
        ]),
        ("Exclusions", [
            bars(
                "Users excluded from coverage", (10, 5),
                "Users of the registration report left out of every coverage figure: members of `exclude_groups` (group) and users only an `exclude_users` pattern matches (pattern).",
                f"sum by (reason) (entra_users_excluded{{{t}}})", "{{reason}}",
            ),
            series(
                "Group members over time", (14, 5), "Transitive user members of each configured group, over time: a group that grows brings in users who may not have registered yet.",
                f"sum by (group) (entra_group_members{{{t}}})", "{{group}}",
            ),
        ]),
    ]


def privileged_sections(t):
    """Issue 14: holders of the configured privileged roles (`privileged_roles`) per role x
    assignment x strength, and the opt-in list (`list_privileged_users`) as a table."""
    count = {"unit": "short", "decimals": 0}
    users = f"sum by (role, assignment) (entra_privileged_users{{{t}}})"

    def strength(s):
        return f'sum by (role, assignment) (entra_privileged_users_by_strength{{{t}, strength="{s}"}})'

    columns = {
        "Value #A": "Holders", "Value #B": "None", "Value #C": "MFA", "Value #D": "Passwordless",
        "Value #E": "Phishing-resistant", "Value #F": "Not MFA capable",
    }
    not_capable = (
        f"{users}\n  - sum by (role, assignment) (entra_privileged_users_with_feature{{{t}, feature=\"mfa_capable\"}})"
    )
    info_columns = ["user_principal_name", "role", "assignment", "strength"]
    return [
        ("Privileged access", [
            share_bars(
                "Privileged roles: phishing-resistant, worst first", (10, 10),
                "For each configured privileged role (`privileged_roles`), the share of its holdings (active and PIM-eligible; a user both active and eligible counts twice) "
                "whose strongest method is phishing-resistant; CISA's ScubaGear MS.AAD.3.6 asks for all of them. Excluded users left out.",
                f'sort(\n  sum by (role) (entra_privileged_users_by_strength{{{t}, strength="phishing_resistant"}})\n'
                f"    / (sum by (role) (entra_privileged_users{{{t}}}) > 0)\n)",
                "{{role}}",
            ),
            table_panel(
                "Privileged roles by assignment and strength", (14, 10),
                "Every configured role held actively (permanent, time-bound, activated) or as PIM-eligible (no eligible rows without P2): holders in the registration report "
                "by their strongest method, and how many cannot complete MFA at all. Sorted by phishing-resistant holders, fewest first.",
                table_queries(users, strength("none"), strength("mfa"), strength("passwordless"), strength("phishing_resistant"), not_capable),
                "short",
                [*merged(columns, ["Time"], first=["role", "assignment"]), transform("sortBy", sort=[{"field": "Phishing-resistant", "desc": False}])],
                decimals=0, overrides=[(c, count) for c in columns.values()],
            ),
            table_panel(
                "Privileged users (opt-in)", (24, 8),
                "One row per user, role and assignment with the user's strongest method, when the tenant sets `list_privileged_users = true` "
                "(at most `max_listed_admins` rows; the exporter logs a warning when it cuts the list).",
                [query(f"entra_privileged_user_info{{{t}}}", instant=True, table=True)],
                "short",
                [transform("organize", excludeByName={"Time": True, "Value": True, "__name__": True, "tenant": True, "job": True, "instance": True},
                           indexByName={name: i for i, name in enumerate(info_columns)})],
            ),
        ]),
    ]


def exporter_health():
    t = 'tenant=~"$tenant"'
    per_report = "{{tenant}} {{report}}"
    age = f"time() - entra_exporter_report_last_success_timestamp_seconds{{{t}}}"
    status = column_names("Up", "Snapshot age", "Rows", "Last refresh took")
    up = dm.ValueMap(options={"0": dm.ValueMappingResult(text="failing", color="red", index=0), "1": dm.ValueMappingResult(text="ok", color="green", index=1)})
    seconds = {"unit": "s"}
    return dashboard(
        "entra-mfa-exporter-health", "Entra exporter health", "Is entra-mfa-exporter collecting: report status and age, refresh durations, Graph requests, retries and token requests.",
        ["exporter"], tenant_variable("entra_exporter_report_up", multi=True), refresh="1m", time_from="now-24h", sections=[
            ("Reports", [
                # Any failing report is red; EntraExporterReportFailing waits 15 minutes, not for a count.
                stat_panel(
                    "Reports failing", (4, 8), "(tenant, report) pairs whose last refresh failed; the exporter keeps exporting their last good snapshot. EntraExporterReportFailing fires after 15 minutes.",
                    f"sum(1 - entra_exporter_report_up{{{t}}})", "failing", thresholds=red_above(0),
                ),
                table_panel(
                    "Report status", (20, 8),
                    "Per tenant and report: whether the last refresh succeeded, how old the exported snapshot is, its rows, and how long the last refresh took. The landing page (/) of the exporter shows the last error.",
                    table_queries(f"entra_exporter_report_up{{{t}}}", age, f"entra_exporter_report_records{{{t}}}", f"entra_exporter_report_duration_seconds{{{t}}}"),
                    "short",
                    merged(status, ["Time", "__name__", "job"], first=["tenant", "report", "instance"]),
                    overrides=[
                        ("Up", {"mappings": [up], "custom.cellOptions": cm.TableColorTextCellOptions()}),
                        ("Snapshot age", seconds),
                        ("Last refresh took", seconds),
                    ],
                ),
                series(
                    "Snapshot age", (12, 8),
                    "Time since the exported snapshot of each report was completed. It grows until the next successful refresh; "
                    f"EntraExporterReportStale fires above {THRESHOLDS['report_stale_seconds'] / 3600:g}h by default.",
                    age, per_report, "s", thresholds=steps((None, "green"), (THRESHOLDS["report_stale_seconds"], "red")),
                ),
                series(
                    "Refresh duration", (12, 8), "How long the last refresh of each report took (all pages, retries included).",
                    f"entra_exporter_report_duration_seconds{{{t}}}", per_report, "s",
                ),
                series(
                    "Refreshes per hour by result", (12, 8), "Refreshes in the last hour, by result.",
                    f"sum by (tenant, report, result) (increase(entra_exporter_report_refreshes_total{{{t}}}[1h]))", "{{tenant}} {{report}} {{result}}",
                ),
                series(
                    "Rows per refresh", (12, 8), "Rows read in the last successful refresh: the report's user count.",
                    f"entra_exporter_report_records{{{t}}}", per_report,
                ),
            ]),
            ("Microsoft Graph", [
                series(
                    "Graph requests per hour by code", (12, 8),
                    "Requests to Microsoft Graph in the last hour, by endpoint and HTTP status (`error`: no response). 429 is throttling, 403 a missing permission or licence.",
                    f"sum by (tenant, endpoint, code) (increase(entra_exporter_graph_requests_total{{{t}}}[1h]))", "{{tenant}} {{endpoint}} {{code}}",
                ),
                series(
                    "Retries per hour by reason", (12, 8), "Requests retried in the last hour, by reason. "
                    f"EntraExporterThrottled fires above {THRESHOLDS['throttled_retries_per_hour']} throttled retries an hour.",
                    f"sum by (tenant, reason) (increase(entra_exporter_graph_retries_total{{{t}}}[1h]))", "{{tenant}} {{reason}}",
                ),
                series(
                    "Graph request duration p95", (12, 8), "95th percentile of Graph request durations over the last hour (one request is one page of up to 999 rows).",
                    f"histogram_quantile(0.95,\n  sum by (tenant, endpoint, le) (increase(entra_exporter_graph_request_duration_seconds_bucket{{{t}}}[1h]))\n)",
                    "{{tenant}} {{endpoint}}", "s",
                ),
                series(
                    "Token requests per hour by result", (12, 8),
                    "Access-token requests to the identity platform in the last hour, by result. Errors usually mean a wrong or expired secret or certificate.",
                    f"sum by (tenant, result) (increase(entra_exporter_token_requests_total{{{t}}}[1h]))", "{{tenant}} {{result}}",
                ),
            ]),
            ("Exporter", [
                table_panel(
                    "Exporter instances", (24, 6), "Running exporters with their version and git revision, and whether Prometheus can scrape them (EntraExporterDown fires after 5 minutes down).",
                    table_queries("entra_exporter_build_info", 'up{job="entra-mfa-exporter"}'), "short",
                    merged({"Value #B": "Up"}, ["Time", "__name__", "Value #A"], first=["instance", "job", "version", "revision"]),
                ),
            ]),
        ],
    )


DASHBOARDS = {
    "entra-mfa-overview.json": overview,
    "entra-mfa-tenant.json": tenant_detail,
    "entra-mfa-exporter-health.json": exporter_health,
}


def lint(name, d):
    """What the convention promises where a machine can tell: datasource and tenant
    variables, unique panel ids, full rows, and every panel a description, the datasource
    variable, a unit and a query."""
    problems = []
    variables = {v["name"]: v for v in d["templating"]["list"]}
    if variables.get("datasource", {}).get("type") != "datasource":
        problems.append("no datasource variable")
    if "tenant" not in variables:
        problems.append("no tenant variable")
    if len({p["id"] for p in d["panels"]}) != len(d["panels"]):
        problems.append("panel ids not unique")
    widths, ds = {}, DS.to_json()
    for p in d["panels"]:
        widths[p["gridPos"]["y"]] = widths.get(p["gridPos"]["y"], 0) + p["gridPos"]["w"]
        if p["type"] == "row":
            continue
        where = f"panel {p['title']!r}"
        if not p.get("description"):
            problems.append(f"{where}: no description")
        if p.get("datasource") != ds or any(t.get("datasource") != ds for t in p.get("targets", [])):
            problems.append(f"{where}: not on the datasource variable")
        if not p["fieldConfig"]["defaults"].get("unit"):
            problems.append(f"{where}: no unit")
        if not p.get("targets"):
            problems.append(f"{where}: no query")
    problems += [f"panels at y={y} fill {w} of the 24 columns" for y, w in widths.items() if w != 24]
    return [f"{name}: {x}" for x in problems]


def render(build):
    # Through the SDK's encoder and back to plain JSON, sorted so that a new SDK release
    # that orders fields differently changes nothing.
    return json.dumps(json.loads(JSONEncoder().encode(build())), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv):
    check = "--check" in argv
    texts = {name: render(build) for name, build in DASHBOARDS.items()}
    docs = {name: json.loads(text) for name, text in texts.items()}
    problems = [x for name, d in docs.items() for x in lint(name, d)]
    uids = [d["uid"] for d in docs.values()]
    if len(set(uids)) != len(uids):
        problems.append(f"dashboard uids not unique: {uids}")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    stale = []
    for name, text in texts.items():
        path = HERE / name
        if not check:
            path.write_text(text)
        elif not path.exists() or path.read_text() != text:
            stale.append(name)
    if stale:
        print(f"dashboards out of date with dashboards/build.py: {', '.join(stale)}; run python3 dashboards/build.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
