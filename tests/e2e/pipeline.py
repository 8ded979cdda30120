"""The whole pipeline on one host, with real everything.

Starts redis-server, mosquitto, two APNs test servers (sandbox and production), the
broker, two resolvers, an apns-sender and an mqtt-sender; seeds Redis with groups and
users of every kind; sends pushes of all three types through the Python client, the C
library (via pushpipe-send) and acknowledged mode; then asserts every APNs request the
test servers accepted and every MQTT message a subscriber got: nothing missing, nothing
extra, right topic, environment, ident and payload.

The expected deliveries are computed here by an independent model of the rules in
docs/resolver.md (the oracle), not by the code under test.
"""
import collections
import json
import os
import subprocess
import sys
import threading
import time

import pp_harness as h

PREFIX = "e2e"
APP = "com.example.app"        # token auth
CERTAPP = "com.example.certapp"  # certificate auth
TEAM = "TEAM123456"
KID = "TESTKEY01"


def tok(n):
    return ("%02x" % n) * 32


def seed(r):
    users = {
        "1": {"app_token": tok(1), "app_ident": APP, "app_version": "produce", "app_focus": "0"},
        "2": {"app_token": tok(2), "app_ident": APP, "app_version": "develop",
              "app_focus": "false"},
        "3": {"app_token": tok(3), "app_ident": APP, "app_version": "produce", "app_focus": "1"},
        "5": {"app_token": "", "app_ident": APP, "app_version": "produce"},
        "6": {"app_token": tok(6), "app_ident": CERTAPP, "app_version": "produce"},
        "7": {"app_token": tok(7), "app_ident": APP, "app_version": "beta"},
        "8": {"app_token": tok(8), "app_ident": APP, "app_version": "develop",
              "app_focus": "TRUE"},
        "alice": {"app_token": tok(10), "app_ident": APP, "app_version": "develop"},
    }
    for uid, fields in users.items():
        r.hset("User:%s" % uid, mapping=fields)
    r.sadd("GroupAppleUser:100", "1", "2", "3", "6", "9")  # 9 has no hash
    r.sadd("GroupAppleUser:200", "7", "8", "alice")
    return users


def model(users, push_type, push_id, data, channels="all"):
    """Returns (apns, mqtt): apns a list of (env, token, topic), mqtt a list of topics."""
    apns, mqtt = [], []

    def eligible(u):
        f = users.get(u)
        if not f or not f.get("app_token"):
            return False
        return str(f.get("app_focus", "")).lower() not in ("1", "true", "yes", "on")

    def env(u):
        v = users[u].get("app_version")
        return "sandbox" if v == "develop" else "production"

    if push_type == 1:
        if channels in ("all", "mqtt"):
            mqtt.append("%s/group/%s" % (PREFIX, push_id))
        if channels in ("all", "apns"):
            members = GROUPS[str(push_id)]
            for u in members:
                if eligible(u):
                    apns.append((env(u), users[u]["app_token"], users[u]["app_ident"]))
        return apns, mqtt
    ids = push_id if push_type == 2 else [push_id]
    seen = []
    for i in ids:
        i = str(i)
        if i not in seen:
            seen.append(i)
    for u in seen:
        if channels == "mqtt":
            mqtt.append("%s/user/%s" % (PREFIX, u))
        elif eligible(u):
            apns.append((env(u), users[u]["app_token"], users[u]["app_ident"]))
        elif channels == "all":
            mqtt.append("%s/user/%s" % (PREFIX, u))
    return apns, mqtt


GROUPS = {"100": ["1", "2", "3", "6", "9"], "200": ["7", "8", "alice"]}
