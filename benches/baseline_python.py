#!/usr/bin/env python3
"""BASELINE, not part of the exporter: the script an admin would write today.

It does what the PowerShell and Python snippets in the wild do: get a token, page
through userRegistrationDetails into one list, then count. It is kept here only so
scripts/bench-e2e can measure the exporter against it (BENCHMARKS.md). Standard
library only, so it runs anywhere python3 does.

usage: baseline_python.py BASE_URL TENANT CLIENT_ID PAGE_SIZE   (secret in FLOOR_CLIENT_SECRET)
"""
import collections
import json
import os
import sys
import urllib.parse
import urllib.request


def main():
    base, tenant, client_id, page_size = sys.argv[1:5]
    form = urllib.parse.urlencode({
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": os.environ["FLOOR_CLIENT_SECRET"],
        "scope": "https://graph.microsoft.com/.default",
    }).encode()
    with urllib.request.urlopen(f"{base}/{tenant}/oauth2/v2.0/token", form) as r:
        token = json.load(r)["access_token"]

    users = []
    url = f"{base}/v1.0/reports/authenticationMethods/userRegistrationDetails?$top={page_size}"
    while url:
        req = urllib.request.Request(url, headers={
            "Authorization": f"Bearer {token}",
            "Prefer": "include-unknown-enum-members",
        })
        with urllib.request.urlopen(req) as r:
            page = json.load(r)
        users.extend(page["value"])
        url = page.get("@odata.nextLink")

    groups = collections.Counter()
    features = collections.Counter()
    methods = collections.Counter()
    for u in users:
        key = (u.get("userType"), u.get("isAdmin"))
        groups[key] += 1
        for f in ("isMfaRegistered", "isMfaCapable", "isSsprRegistered", "isSsprEnabled",
                  "isSsprCapable", "isPasswordlessCapable",
                  "isSystemPreferredAuthenticationMethodEnabled"):
            if u.get(f):
                features[key + (f,)] += 1
        for m in set(u.get("methodsRegistered") or []):
            methods[key + (m,)] += 1
    print(f"users={len(users)} groups={len(groups)} feature_series={len(features)} "
          f"method_series={len(methods)}")


if __name__ == "__main__":
    main()
