#!/usr/bin/env python3
"""Writes the Grafana dashboards of entra-mfa-exporter (dashboards/*.json).

The JSON files are generated so that every panel has the same datasource wiring, units,
thresholds and descriptions; edit this file, run `python3 dashboards/build.py`, and commit
both. `python3 dashboards/build.py --check` fails when a JSON file differs from what this
file generates (scripts/test runs it), so the two cannot drift apart.

Every query must return data against a real Prometheus scraping `entra-mfa-exporter
--demo` (tests/e2e_prometheus.py runs them all). Windows are 1h where the exporter's
counters move once per refresh (reports refresh hourly or slower), so the panels show
"per hour" figures instead of mostly-empty per-second rates.
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39
MEMBERS = 'user_type="member"'

# Coverage colours: below 80 % red, below the alert target of 90 % orange, else green
# (the target is entra:threshold:mfa_coverage_target_ratio in deploy/prometheus/rules.yml).
COVERAGE_STEPS = [
    {"color": "red", "value": None},
    {"color": "orange", "value": 0.8},
    {"color": "green", "value": 0.9},
]
FEATURE_NAMES = {
    "mfa_registered": "MFA registered",
    "mfa_capable": "MFA capable",
    "sspr_registered": "SSPR registered",
    "sspr_enabled": "SSPR enabled",
    "sspr_capable": "SSPR capable",
    "passwordless_capable": "Passwordless capable",
    "system_preferred_mfa_enabled": "System-preferred MFA enabled",
}


class Layout:
    """Places panels left to right on Grafana's 24-column grid, wrapping rows."""

    def __init__(self):
        self.x, self.y, self.row_h, self.next_id = 0, 0, 0, 1

    def place(self, panel, w, h):
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        panel["id"] = self.next_id
        self.next_id += 1
        self.x += w
        self.row_h = max(self.row_h, h)
        return panel

    def row(self, title):
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel = {
            "type": "row",
            "title": title,
            "collapsed": False,
            "panels": [],
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
            "id": self.next_id,
        }
        self.next_id += 1
        self.y += 1
        return panel


def target(expr, legend="__auto", ref="A", instant=False, table=False):
    t = {"datasource": DS, "refId": ref, "expr": expr, "legendFormat": legend}
    if instant:
        t["instant"] = True
        t["range"] = False
    else:
        t["range"] = True
    if table:
        t["format"] = "table"
    return t


def thresholds(steps):
    return {"mode": "absolute", "steps": steps}


def field_defaults(unit, steps=None, min_=None, max_=None, decimals=None, custom=None):
    d = {"unit": unit, "thresholds": thresholds(steps or [{"color": "green", "value": None}])}
    d["color"] = {"mode": "thresholds"} if steps else {"mode": "palette-classic"}
    if min_ is not None:
        d["min"] = min_
    if max_ is not None:
        d["max"] = max_
    if decimals is not None:
        d["decimals"] = decimals
    if custom is not None:
        d["custom"] = custom
    return d


def reduce_last():
    return {"calcs": ["lastNotNull"], "fields": "", "values": False}


def panel(kind, title, description, targets, defaults, options, transformations=None):
    p = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
    }
    if transformations:
        p["transformations"] = transformations
    return p


def gauge(title, description, targets):
    return panel(
        "gauge",
        title,
        description,
        targets,
        field_defaults("percentunit", COVERAGE_STEPS, 0, 1, 1),
        {
            "reduceOptions": reduce_last(),
            "orientation": "auto",
            "showThresholdLabels": False,
            "showThresholdMarkers": True,
            "minVizHeight": 75,
            "minVizWidth": 75,
            "sizing": "auto",
        },
    )


def stat(title, description, targets, unit="short", steps=None, decimals=None, min_=None, max_=None):
    return panel(
        "stat",
        title,
        description,
        targets,
        field_defaults(unit, steps, min_, max_, decimals),
        {
            "reduceOptions": reduce_last(),
            "orientation": "auto",
            "colorMode": "value" if steps else "none",
            "graphMode": "none",
            "justifyMode": "auto",
            "textMode": "auto",
            "wideLayout": True,
            "showPercentChange": False,
        },
    )


def timeseries(title, description, targets, unit, min_=None, max_=None, steps=None, stack=False, bars=False):
    custom = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 60 if bars else 10,
        "showPoints": "never",
        "spanNulls": True,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "axisSoftMin": 0,
    }
    if steps:
        custom["thresholdsStyle"] = {"mode": "dashed"}
    defaults = field_defaults(unit, steps, min_, max_, custom=custom)
    defaults["color"] = {"mode": "palette-classic"}
    return panel(
        "timeseries",
        title,
        description,
        targets,
        defaults,
        {
            "legend": {"displayMode": "table", "placement": "right", "showLegend": True, "calcs": ["lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )


def bargauge(title, description, targets, unit, steps=None, min_=None, max_=None, decimals=None):
    return panel(
        "bargauge",
        title,
        description,
        targets,
        field_defaults(unit, steps, min_, max_, decimals),
        {
            "reduceOptions": reduce_last(),
            "orientation": "horizontal",
            "displayMode": "gradient",
            "valueMode": "color",
            "namePlacement": "auto",
            "showUnfilled": True,
            "sizing": "auto",
            "minVizHeight": 16,
            "minVizWidth": 8,
            "maxVizHeight": 300,
        },
    )


def counts(title, description, expr, legend, steps=None):
    """A bar gauge of user or event counts from one instant query."""
    return bargauge(title, description, [target(expr, legend, instant=True)], "short", steps, decimals=0)


def table(title, description, targets, unit, transformations, steps=None, decimals=None, overrides=None):
    defaults = field_defaults(unit, steps, decimals=decimals)
    p = panel(
        "table",
        title,
        description,
        targets,
        defaults,
        {"showHeader": True, "cellHeight": "sm", "frameIndex": 0},
        transformations,
    )
    if steps:
        defaults["custom"] = {"cellOptions": {"type": "color-background", "mode": "basic"}}
    if overrides:
        p["fieldConfig"]["overrides"] = overrides
    return p


def override(name, props):
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": k, "value": v} for k, v in props.items()],
    }


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


def coverage_by_feature(sel):
    """PromQL: per feature, the share of the users matching `sel` for whom it holds."""
    return (
        f"sum by (feature) (entra_users_with_feature{{{sel}}})\n"
        f"  / ignoring (feature) group_left ()\n  (sum(entra_users{{{sel}}}) > 0)"
    )


def admins_without_mfa_stat(sel, description):
    return stat(
        "Admins without MFA",
        description,
        [target(admins_without_mfa(sel), "admins without MFA", instant=True)],
        steps=[{"color": "green", "value": None}, {"color": "red", "value": 1}],
        decimals=0,
    )


def member_coverage_by_feature(sel, description):
    return timeseries(
        "Member coverage by feature",
        description,
        [target(coverage_by_feature(sel), "{{feature}}")],
        "percentunit",
        0,
        1,
    )


def datasource_var():
    return {
        "type": "datasource",
        "name": "datasource",
        "label": "Data source",
        "query": "prometheus",
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
        "skipUrlSync": False,
    }


def tenant_var(metric, multi):
    v = {
        "type": "query",
        "name": "tenant",
        "label": "Tenant",
        "description": "The exporter's `tenant` label (the `name` of the tenant in its config).",
        "datasource": DS,
        "query": {"query": f"label_values({metric}, tenant)", "refId": "tenant"},
        "hide": 0,
        "refresh": 2,
        "regex": "",
        "sort": 1,
        "multi": multi,
        "includeAll": multi,
        "options": [],
        "skipUrlSync": False,
    }
    if multi:
        v["allValue"] = ".*"
    return v


def dashboard(uid, title, description, tags, variables, panels, refresh="5m", time_from="now-7d"):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["entra", "mfa"] + tags,
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": refresh,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "type": "dashboards",
                "tags": ["entra"],
                "asDropdown": True,
                "title": "Entra dashboards",
                "includeVars": True,
                "keepTime": True,
                "icon": "external link",
                "targetBlank": False,
                "tooltip": "",
                "url": "",
            }
        ],
        "templating": {"list": [datasource_var()] + variables},
        "panels": panels,
    }


def overview():
    lay = Layout()
    sel = f'tenant=~"$tenant", {MEMBERS}'
    panels = [lay.row("Coverage now")]
    gauges = [
        ("mfa_capable", "Member MFA capable", "Share of member users who are MFA capable: registered a strong method allowed by policy. The alerts EntraMfaCoverageBelowTarget and EntraMfaCoverageDropped watch this ratio."),
        ("mfa_registered", "Member MFA registered", "Share of member users who registered at least one MFA method."),
        ("sspr_capable", "Member SSPR capable", "Share of member users who are registered for and allowed to use self-service password reset."),
        ("passwordless_capable", "Member passwordless capable", "Share of member users who registered a passwordless method (passkey, Windows Hello, Authenticator phone sign-in) allowed by policy."),
    ]
    for feature, title, desc in gauges:
        panels.append(lay.place(gauge(title, desc + " One gauge per tenant.", [target(ratio(feature, sel), "{{tenant}}", instant=True)]), 5, 7))
    panels.append(
        lay.place(
            admins_without_mfa_stat(
                'tenant=~"$tenant"',
                "Users holding an admin role (members and guests) who are not MFA capable, summed over the selected tenants. EntraAdminWithoutMfa fires above 0.",
            ),
            4,
            7,
        )
    )
    panels.append(lay.row("Coverage over time"))
    panels.append(
        lay.place(
            timeseries(
                "Member MFA capable by tenant",
                "Share of member users who are MFA capable, per tenant. Steps follow report refreshes (hourly by default); a fall of more than 5 points against a week earlier fires EntraMfaCoverageDropped.",
                [target(ratio("mfa_capable", sel), "{{tenant}}")],
                "percentunit",
                0,
                1,
                COVERAGE_STEPS,
            ),
            12,
            9,
        )
    )
    panels.append(
        lay.place(
            member_coverage_by_feature(sel, "Share of member users of all selected tenants together for whom each feature holds."),
            12,
            9,
        )
    )
    panels.append(lay.row("Weakest tenants"))
    panels.append(
        lay.place(
            bargauge(
                "Weakest tenants: member MFA capable",
                "The ten selected tenants with the lowest share of MFA-capable members.",
                [target(f"bottomk(10,\n  {ratio('mfa_capable', sel)}\n)", "{{tenant}}", instant=True)],
                "percentunit",
                COVERAGE_STEPS,
                0,
                1,
                1,
            ),
            10,
            9,
        )
    )
    panels.append(
        lay.place(
            table(
                "Tenants",
                "Every selected tenant: users, member coverage per feature and admins without MFA. Sort by a column to find the weakest.",
                [
                    target(f'sum by (tenant) (entra_users{{tenant=~"$tenant"}})', ref="A", instant=True, table=True),
                    target(ratio("mfa_capable", sel), ref="B", instant=True, table=True),
                    target(ratio("sspr_capable", sel), ref="C", instant=True, table=True),
                    target(ratio("passwordless_capable", sel), ref="D", instant=True, table=True),
                    target(admins_without_mfa('tenant=~"$tenant"', by="tenant"), ref="E", instant=True, table=True),
                ],
                "percentunit",
                [
                    {"id": "merge", "options": {}},
                    {
                        "id": "organize",
                        "options": {
                            "excludeByName": {"Time": True},
                            "indexByName": {"tenant": 0, "Value #A": 1, "Value #B": 2, "Value #C": 3, "Value #D": 4, "Value #E": 5},
                            "renameByName": {
                                "Value #A": "Users",
                                "Value #B": "Members MFA capable",
                                "Value #C": "Members SSPR capable",
                                "Value #D": "Members passwordless capable",
                                "Value #E": "Admins without MFA",
                            },
                        },
                    },
                ],
                decimals=1,
                overrides=[
                    override("Users", {"unit": "short", "decimals": 0}),
                    override("Admins without MFA", {"unit": "short", "decimals": 0}),
                ],
            ),
            14,
            9,
        )
    )
    return dashboard(
        "entra-mfa-overview",
        "Entra MFA overview",
        "MFA, SSPR and passwordless coverage across every tenant the entra-mfa-exporter watches.",
        ["overview"],
        [tenant_var("entra_users", multi=True)],
        panels,
    )


def usage_and_summary_rows(lay, t):
    """Tenant-detail rows on the reports besides the registration details: SSPR and
    registration activity (credential_usage_summary, user_credential_usage_details,
    user_events_summary), the opt-in admin list, and the count and summary reports. A
    tenant that does not enable a report shows "No data" there; each description names
    the report to enable."""
    act = f"entra_credential_usage_activities{{{t}"
    failure_steps = [{"color": "green", "value": None}, {"color": "orange", "value": 0.1}, {"color": "red", "value": 0.25}]
    panels = [lay.row("Self-service password reset and registration activity")]
    panels.append(
        lay.place(
            stat(
                "SSPR reset failure rate",
                "Share of self-service password resets that failed in the usage period (`usage_period`, default 30 days). From the credential_usage_summary report.",
                [target(f'sum({act}, feature="reset", result="failure"}})\n  / (sum({act}, feature="reset"}}) > 0)', "failure rate", instant=True)],
                "percentunit",
                failure_steps,
                1,
                0,
                1,
            ),
            4,
            8,
        )
    )
    panels.append(
        lay.place(
            counts(
                "SSPR resets by result",
                "Self-service password resets in the usage period, by result. From the credential_usage_summary report.",
                f'sum by (result) ({act}, feature="reset"}})',
                "{{result}}",
            ),
            6,
            8,
        )
    )
    panels.append(
        lay.place(
            counts(
                "SSPR reset failures by method",
                "Failed self-service password resets in the usage period, by the method used to verify: a method that fails often needs looking at (lost phones, outdated numbers). From the credential_usage_summary report.",
                f'sort_desc(sum by (method) ({act}, feature="reset", result="failure"}}))',
                "{{method}}",
                [{"color": "green", "value": None}, {"color": "red", "value": 1}],
            ),
            7,
            8,
        )
    )
    panels.append(
        lay.place(
            counts(
                "Activity by feature and result",
                "Registrations, resets and password changes in the usage period, by result. From the credential_usage_summary report.",
                f"sum by (feature, result) ({act}}})",
                "{{feature}} {{result}}",
            ),
            7,
            8,
        )
    )
    panels.append(
        lay.place(
            timeseries(
                "Usage events by feature and result",
                "Registration and reset events the per-user usage reports returned (user_credential_usage_details, or its successor user_events_summary), by report, feature and result.",
                [target(f"sum by (source, feature, result) (entra_credential_usage_events{{{t}}})", "{{source}} {{feature}} {{result}}")],
                "short",
                0,
            ),
            12,
            8,
        )
    )
    panels.append(
        lay.place(
            table(
                "Time since the last event",
                "How long ago the newest event of each feature and result happened, per usage report. A long-quiet reset failure is good news; a long-quiet success may mean SSPR is not used.",
                [target(f"time() - entra_credential_usage_last_event_timestamp_seconds{{{t}}}", instant=True, table=True)],
                "s",
                [{"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True, "job": True, "instance": True, "tenant": True}, "renameByName": {"Value": "Since last event"}}}],
            ),
            12,
            8,
        )
    )
    panels.append(lay.row("Opt-in and summary reports"))
    panels.append(
        lay.place(
            table(
                "Admins without MFA (list)",
                "Each user holding an admin role who is not MFA capable, by user principal name. Only for tenants with `admins_without_mfa = true`, at most `max_listed_admins` (default 100).",
                [target(f"entra_admin_without_mfa_info{{{t}}}", instant=True, table=True)],
                "short",
                [{"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True, "job": True, "instance": True, "tenant": True, "Value": True}, "renameByName": {"user_principal_name": "User principal name"}}}],
            ),
            8,
            10,
        )
    )
    panels.append(
        lay.place(
            bargauge(
                "Registration counts",
                "Share of all users registered, enabled and capable for SSPR, MFA registered and passwordless capable, as counted by Microsoft (credential_user_registration_count report).",
                [target(f"entra_credential_registration_users{{{t}}}\n  / on (tenant) group_left ()\n  (entra_credential_registration_total_users{{{t}}} > 0)", "{{status}}", instant=True)],
                "percentunit",
                COVERAGE_STEPS,
                0,
                1,
                1,
            ),
            8,
            10,
        )
    )
    panels.append(
        lay.place(
            bargauge(
                "Summary: features",
                "Share of users for whom each feature holds, per queried user type and role, from Microsoft's own summary (users_registered_by_feature; delegated permission only).",
                [
                    target(
                        f"entra_summary_users_with_feature{{{t}}}\n  / on (tenant, user_types, user_roles) group_left ()\n"
                        f'  (entra_summary_users{{{t}, report="users_registered_by_feature"}} > 0)',
                        "{{user_types}}/{{user_roles}} {{feature}}",
                        instant=True,
                    )
                ],
                "percentunit",
                COVERAGE_STEPS,
                0,
                1,
                1,
            ),
            8,
            10,
        )
    )
    panels.append(
        lay.place(
            counts(
                "Summary: methods",
                "Users with each method registered, per queried user type and role, from Microsoft's own summary (users_registered_by_method; delegated permission only).",
                f"sort_desc(entra_summary_users_with_method{{{t}}})",
                "{{user_types}}/{{user_roles}} {{method}}",
            ),
            24,
            10,
        )
    )
    return panels


def tenant_detail():
    lay = Layout()
    t = 'tenant="$tenant"'
    sel = f"{t}, {MEMBERS}"
    admins = f'{t}, role="admin"'
    panels = [lay.row("Coverage now")]
    panels.append(lay.place(stat("Users", "Users in the registration report (Graph leaves out disabled users).", [target(f"sum(entra_users{{{t}}})", "users", instant=True)], decimals=0), 4, 5))
    for feature, title in [("mfa_capable", "Members MFA capable"), ("mfa_registered", "Members MFA registered"), ("sspr_capable", "Members SSPR capable"), ("passwordless_capable", "Members passwordless capable")]:
        panels.append(lay.place(stat(title, f"Share of member users who are {FEATURE_NAMES[feature]}.", [target(ratio(feature, sel, by="tenant"), "{{tenant}}", instant=True)], "percentunit", COVERAGE_STEPS, 1, 0, 1), 4, 5))
    panels.append(
        lay.place(
            stat(
                "Admins MFA capable",
                "Share of users holding an admin role (members and guests) who are MFA capable; every admin should be.",
                [target(ratio("mfa_capable", admins), "{{tenant}}", instant=True)],
                "percentunit",
                [{"color": "red", "value": None}, {"color": "green", "value": 1}],
                1,
                0,
                1,
            ),
            4,
            5,
        )
    )
    panels.append(lay.row("By user type and role"))
    panels.append(
        lay.place(
            table(
                "Features by user type and role",
                "For each user type and role (`unknown` role: Graph did not say whether the user is an admin), the share of its users for whom each feature holds.",
                [
                    target(
                        f'label_join(\n  sum by (user_type, role, feature) (entra_users_with_feature{{{t}}})\n    / ignoring (feature) group_left ()\n  (sum by (user_type, role) (entra_users{{{t}}}) > 0),\n  "group", " / ", "user_type", "role"\n)',
                        instant=True,
                        table=True,
                    )
                ],
                "percentunit",
                [
                    {"id": "groupingToMatrix", "options": {"columnField": "feature", "rowField": "group", "valueField": "Value"}},
                    {"id": "organize", "options": {"renameByName": {"group\\feature": "user type / role", **FEATURE_NAMES}}},
                ],
                COVERAGE_STEPS,
                1,
            ),
            16,
            8,
        )
    )
    panels.append(
        lay.place(
            counts(
                "Users by type and role",
                "Users in the registration report by user type and role.",
                f"sum by (user_type, role) (entra_users{{{t}}})",
                "{{user_type}} / {{role}}",
            ),
            8,
            8,
        )
    )
    panels.append(lay.row("Methods"))
    panels.append(
        lay.place(
            counts(
                "Methods registered",
                "Users with each authentication method registered, as Graph names the method. A user with several methods counts under each.",
                f"sort_desc(sum by (method) (entra_users_with_method{{{t}}}))",
                "{{method}}",
            ),
            8,
            10,
        )
    )
    panels.append(
        lay.place(
            panel(
                "piechart",
                "Preferred MFA method",
                "Users by their preferred (default) secondary method; `none` when they have not chosen one. Not reported by the legacy credential_user_registration_details source.",
                [target(f"sum by (method) (entra_users_by_preferred_method{{{t}}})", "{{method}}", instant=True)],
                field_defaults("short", decimals=0),
                {
                    "reduceOptions": reduce_last(),
                    "pieType": "donut",
                    "displayLabels": ["percent"],
                    "legend": {"displayMode": "table", "placement": "right", "showLegend": True, "values": ["value", "percent"], "calcs": []},
                    "tooltip": {"mode": "single", "sort": "none"},
                },
            ),
            8,
            10,
        )
    )
    panels.append(
        lay.place(
            counts(
                "Registered methods per user",
                "How many distinct methods users have registered: 0 means no method at all, 1 means no fallback when that one is lost.",
                f"sum by (methods) (entra_users_by_registered_methods{{{t}}})",
                "{{methods}} methods",
            ),
            8,
            10,
        )
    )
    panels.append(lay.row("Admins"))
    panels.append(
        lay.place(
            timeseries(
                "Admin coverage",
                "Share of users holding an admin role (members and guests) who are MFA registered, MFA capable and passwordless capable.",
                [
                    target(
                        coverage_by_feature(admins).replace("{" + admins + "}", "{" + admins + ', feature=~"mfa_registered|mfa_capable|passwordless_capable"}', 1),
                        "{{feature}}",
                    )
                ],
                "percentunit",
                0,
                1,
            ),
            16,
            8,
        )
    )
    panels.append(
        lay.place(
            admins_without_mfa_stat(
                t,
                "Users holding an admin role who are not MFA capable. Set `admins_without_mfa = true` for the tenant to list them in entra_admin_without_mfa_info.",
            ),
            8,
            8,
        )
    )
    panels.append(lay.row("Trend"))
    panels.append(
        lay.place(
            member_coverage_by_feature(sel, "Share of member users for whom each feature holds, over time. Steps follow report refreshes."),
            12,
            9,
        )
    )
    panels.append(
        lay.place(
            timeseries(
                "Users by type",
                "Users in the registration report by user type, over time.",
                [target(f"sum by (user_type) (entra_users{{{t}}})", "{{user_type}}")],
                "short",
                0,
                stack=True,
            ),
            12,
            9,
        )
    )
    panels.extend(usage_and_summary_rows(lay, t))
    return dashboard(
        "entra-mfa-tenant",
        "Entra MFA tenant detail",
        "One tenant in detail: features by user type and role, registered and preferred methods, admins and the trend.",
        ["tenant"],
        [tenant_var("entra_users", multi=False)],
        panels,
    )


def exporter_health():
    lay = Layout()
    t = 'tenant=~"$tenant"'
    panels = [lay.row("Reports")]
    panels.append(
        lay.place(
            stat(
                "Reports failing",
                "(tenant, report) pairs whose last refresh failed; the exporter keeps exporting their last good snapshot. EntraExporterReportFailing fires after 15 minutes.",
                [target(f"sum(1 - entra_exporter_report_up{{{t}}})", "failing", instant=True)],
                steps=[{"color": "green", "value": None}, {"color": "red", "value": 1}],
                decimals=0,
            ),
            4,
            8,
        )
    )
    panels.append(
        lay.place(
            table(
                "Report status",
                "Per tenant and report: whether the last refresh succeeded, how old the exported snapshot is, its rows, and how long the last refresh took. The landing page (/) of the exporter shows the last error.",
                [
                    target(f"entra_exporter_report_up{{{t}}}", ref="A", instant=True, table=True),
                    target(f"time() - entra_exporter_report_last_success_timestamp_seconds{{{t}}}", ref="B", instant=True, table=True),
                    target(f"entra_exporter_report_records{{{t}}}", ref="C", instant=True, table=True),
                    target(f"entra_exporter_report_duration_seconds{{{t}}}", ref="D", instant=True, table=True),
                ],
                "short",
                [
                    {"id": "merge", "options": {}},
                    {
                        "id": "organize",
                        "options": {
                            "excludeByName": {"Time": True, "__name__": True, "job": True},
                            "indexByName": {"tenant": 0, "report": 1, "instance": 2, "Value #A": 3, "Value #B": 4, "Value #C": 5, "Value #D": 6},
                            "renameByName": {"Value #A": "Up", "Value #B": "Snapshot age", "Value #C": "Rows", "Value #D": "Last refresh took"},
                        },
                    },
                ],
                overrides=[
                    override("Up", {"mappings": [{"type": "value", "options": {"0": {"text": "failing", "color": "red", "index": 0}, "1": {"text": "ok", "color": "green", "index": 1}}}], "custom.cellOptions": {"type": "color-text"}}),
                    override("Snapshot age", {"unit": "s"}),
                    override("Last refresh took", {"unit": "s"}),
                ],
            ),
            20,
            8,
        )
    )
    panels.append(
        lay.place(
            timeseries(
                "Snapshot age",
                "Time since the exported snapshot of each report was completed. It grows until the next successful refresh; EntraExporterReportStale fires above 3h by default.",
                [target(f"time() - entra_exporter_report_last_success_timestamp_seconds{{{t}}}", "{{tenant}} {{report}}")],
                "s",
                0,
                steps=[{"color": "green", "value": None}, {"color": "red", "value": 10800}],
            ),
            12,
            8,
        )
    )
    panels.append(
        lay.place(
            timeseries(
                "Refresh duration",
                "How long the last refresh of each report took (all pages, retries included).",
                [target(f"entra_exporter_report_duration_seconds{{{t}}}", "{{tenant}} {{report}}")],
                "s",
                0,
            ),
            12,
            8,
        )
    )
    panels.append(
        lay.place(
            timeseries(
                "Refreshes per hour by result",
                "Refreshes in the last hour, by result.",
                [target(f"sum by (tenant, report, result) (increase(entra_exporter_report_refreshes_total{{{t}}}[1h]))", "{{tenant}} {{report}} {{result}}")],
                "short",
                0,
            ),
            12,
            8,
        )
    )
    panels.append(
        lay.place(
            timeseries(
                "Rows per refresh",
                "Rows read in the last successful refresh: the report's user count.",
                [target(f"entra_exporter_report_records{{{t}}}", "{{tenant}} {{report}}")],
                "short",
                0,
            ),
            12,
            8,
        )
    )
    panels.append(lay.row("Microsoft Graph"))
    panels.append(
        lay.place(
            timeseries(
                "Graph requests per hour by code",
                "Requests to Microsoft Graph in the last hour, by endpoint and HTTP status (`error`: no response). 429 is throttling, 403 a missing permission or licence.",
                [target(f"sum by (tenant, endpoint, code) (increase(entra_exporter_graph_requests_total{{{t}}}[1h]))", "{{tenant}} {{endpoint}} {{code}}")],
                "short",
                0,
            ),
            12,
            8,
        )
    )
    panels.append(
        lay.place(
            timeseries(
                "Retries per hour by reason",
                "Requests retried in the last hour, by reason. EntraExporterThrottled fires above 10 throttled retries an hour.",
                [target(f"sum by (tenant, reason) (increase(entra_exporter_graph_retries_total{{{t}}}[1h]))", "{{tenant}} {{reason}}")],
                "short",
                0,
            ),
            12,
            8,
        )
    )
    panels.append(
        lay.place(
            timeseries(
                "Graph request duration p95",
                "95th percentile of Graph request durations over the last hour (one request is one page of up to 999 rows).",
                [target(f"histogram_quantile(0.95,\n  sum by (tenant, endpoint, le) (increase(entra_exporter_graph_request_duration_seconds_bucket{{{t}}}[1h]))\n)", "{{tenant}} {{endpoint}}")],
                "s",
                0,
            ),
            12,
            8,
        )
    )
    panels.append(
        lay.place(
            timeseries(
                "Token requests per hour by result",
                "Access-token requests to the identity platform in the last hour, by result. Errors usually mean a wrong or expired secret or certificate.",
                [target(f"sum by (tenant, result) (increase(entra_exporter_token_requests_total{{{t}}}[1h]))", "{{tenant}} {{result}}")],
                "short",
                0,
            ),
            12,
            8,
        )
    )
    panels.append(lay.row("Exporter"))
    panels.append(
        lay.place(
            table(
                "Exporter instances",
                "Running exporters with their version and git revision, and whether Prometheus can scrape them (EntraExporterDown fires after 5 minutes down).",
                [
                    target("entra_exporter_build_info", ref="A", instant=True, table=True),
                    target('up{job="entra-mfa-exporter"}', ref="B", instant=True, table=True),
                ],
                "short",
                [
                    {"id": "merge", "options": {}},
                    {
                        "id": "organize",
                        "options": {
                            "excludeByName": {"Time": True, "__name__": True, "Value #A": True},
                            "indexByName": {"instance": 0, "job": 1, "version": 2, "revision": 3, "Value #B": 4},
                            "renameByName": {"Value #B": "Up"},
                        },
                    },
                ],
            ),
            24,
            6,
        )
    )
    return dashboard(
        "entra-mfa-exporter-health",
        "Entra exporter health",
        "Is entra-mfa-exporter collecting: report status and age, refresh durations, Graph requests, retries and token requests.",
        ["exporter"],
        [tenant_var("entra_exporter_report_up", multi=True)],
        panels,
        refresh="1m",
        time_from="now-24h",
    )


DASHBOARDS = {
    "entra-mfa-overview.json": overview,
    "entra-mfa-tenant.json": tenant_detail,
    "entra-mfa-exporter-health.json": exporter_health,
}


def render(build):
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def lint(name, d):
    """What every dashboard promises: datasource and tenant variables, and every panel
    a description, the datasource variable, a unit and at least one query."""
    problems = []
    variables = {v["name"]: v for v in d["templating"]["list"]}
    if variables.get("datasource", {}).get("type") != "datasource":
        problems.append("no datasource variable")
    if "tenant" not in variables:
        problems.append("no tenant variable")
    uids = {p["id"] for p in d["panels"]}
    if len(uids) != len(d["panels"]):
        problems.append("panel ids not unique")
    for p in d["panels"]:
        if p["type"] == "row":
            continue
        where = f"panel {p['title']!r}"
        if not p.get("description"):
            problems.append(f"{where}: no description")
        if p.get("datasource") != DS or any(t.get("datasource") != DS for t in p["targets"]):
            problems.append(f"{where}: not on the datasource variable")
        if not p["fieldConfig"]["defaults"].get("unit"):
            problems.append(f"{where}: no unit")
        if not p["targets"]:
            problems.append(f"{where}: no query")
    return [f"{name}: {x}" for x in problems]


def main(argv):
    check = "--check" in argv
    stale = []
    problems = [x for name, build in DASHBOARDS.items() for x in lint(name, build())]
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    uids = [build()["uid"] for build in DASHBOARDS.values()]
    if len(set(uids)) != len(uids):
        print(f"dashboard uids not unique: {uids}", file=sys.stderr)
        return 1
    for name, build in DASHBOARDS.items():
        path = HERE / name
        text = render(build)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"dashboards out of date with dashboards/build.py: {', '.join(stale)}; run python3 dashboards/build.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
