#!/usr/bin/env python3
"""Writes pushpipe.json, the Grafana dashboard for pushpipe's Prometheus metrics.
Run after changing the panels: python3 deploy/grafana/gen_dashboard.py
Every series is pushpipe_<name>{proc="<program>", ...}; tests/launcher/test_deploy.py checks
that each metric named here is exported by the real programs."""
import json
import os

DS = {"type": "prometheus", "uid": "${datasource}"}

ROWS = [
    ("Pipeline", [
        ("Pushes accepted / s", 'sum(rate(pushpipe_accepted_total{proc="broker"}[1m]))', "ops"),
        ("Pushes rejected / s by reason",
         'sum by (reason) (rate(pushpipe_rejected_total{proc="broker"}[5m]))', "ops"),
        ("Stages up (launcher)", 'sum by (stage) (pushpipe_stage_up{proc="launcher"})', "none"),
        ("Stage restarts (1h)",
         'sum by (stage) (increase(pushpipe_stage_restarts_total{proc="launcher"}[1h]))', "none"),
    ]),
    ("Broker", [
        ("Received / s by endpoint",
         'sum by (endpoint) (rate(pushpipe_received_total{proc="broker"}[1m]))', "ops"),
        ("Forwarded / s by stage",
         'sum by (stage) (rate(pushpipe_forwarded_total{proc="broker"}[1m]))', "ops"),
        ("Queue depth by stage", 'sum by (stage) (pushpipe_queue_depth{proc="broker"})', "none"),
        ("Queue full / enqueue errors",
         'sum by (stage) (rate(pushpipe_queue_full_total{proc="broker"}[5m])) or '
         'sum by (stage) (rate(pushpipe_enqueue_errors_total{proc="broker"}[5m]))', "ops"),
        ("Link: requeued jobs and worker deaths / s by pool",
         'sum by (pool) (rate(pushpipe_link_requeued_total{proc="broker"}[5m])) or '
         'sum by (pool) (rate(pushpipe_link_worker_deaths_total{proc="broker"}[5m]))', "ops"),
        ("Link: workers, pending and in flight by pool",
         'sum by (pool) (pushpipe_link_workers{proc="broker"}) or '
         'sum by (pool) (pushpipe_link_in_flight{proc="broker"})', "none"),
        ("CURVE handshakes / s by result",
         'sum by (result) (rate(pushpipe_curve_handshakes_total{proc="broker"}[5m]))', "ops"),
        ("Replies dropped / recv errors",
         'rate(pushpipe_replies_dropped_total{proc="broker"}[5m]) or '
         'rate(pushpipe_recv_errors_total{proc="broker"}[5m])', "ops"),
    ]),
    ("Resolvers", [
        ("Messages / s by type",
         'sum by (type) (rate(pushpipe_messages_total{proc="resolver"}[1m]))', "ops"),
        ("Users looked up / s", 'sum(rate(pushpipe_users_looked_up_total{proc="resolver"}[1m]))',
         "ops"),
        ("Jobs out / s",
         'sum(rate(pushpipe_apns_jobs_total{proc="resolver"}[1m])) or '
         'sum(rate(pushpipe_mqtt_jobs_total{proc="resolver"}[1m]))', "ops"),
        ("Skipped / s by reason",
         'sum by (reason) (rate(pushpipe_skipped_total{proc="resolver"}[5m]))', "ops"),
        ("Redis up (min over resolvers)", 'min(pushpipe_redis_up{proc="resolver"})', "none"),
        ("Redis errors / reconnects",
         'sum(rate(pushpipe_redis_errors_total{proc="resolver"}[5m])) or '
         'sum(rate(pushpipe_redis_reconnects_total{proc="resolver"}[5m]))', "ops"),
    ]),
    ("APNs senders", [
        ("Sent / s", 'sum(rate(pushpipe_sent_total{proc="apns-sender"}[1m]))', "ops"),
        ("Delivered / s by environment",
         'sum by (env) (rate(pushpipe_delivered_total{proc="apns-sender"}[1m]))', "ops"),
        ("Rejected by APNs / s by reason",
         'sum by (reason) (rate(pushpipe_rejected_total{proc="apns-sender"}[5m]))', "ops"),
        ("Retried / s by status",
         'sum by (status) (rate(pushpipe_retried_total{proc="apns-sender"}[5m]))', "ops"),
        ("Not configured / unknown ident / s",
         'sum(rate(pushpipe_not_configured_total{proc="apns-sender"}[5m])) or '
         'sum(rate(pushpipe_unknown_ident_total{proc="apns-sender"}[5m]))', "ops"),
        ("HTTP/2 connections, pending, in flight",
         'sum(pushpipe_connections{proc="apns-sender"}) or '
         'sum(pushpipe_pending{proc="apns-sender"}) or '
         'sum(pushpipe_in_flight{proc="apns-sender"})', "none"),
        ("Invalid tokens removed / s",
         'sum(rate(pushpipe_tokens_removed_total{proc="apns-sender"}[5m]))', "ops"),
    ]),
    ("MQTT senders", [
        ("Published / acknowledged / s",
         'sum(rate(pushpipe_published_total{proc="mqtt-sender"}[1m])) or '
         'sum(rate(pushpipe_acknowledged_total{proc="mqtt-sender"}[1m]))', "ops"),
        ("Failed / s by reason",
         'sum by (reason) (rate(pushpipe_failed_total{proc="mqtt-sender"}[5m]))', "ops"),
        ("Buffered / in flight",
         'sum(pushpipe_buffered{proc="mqtt-sender"}) or '
         'sum(pushpipe_in_flight{proc="mqtt-sender"})', "none"),
        ("Connected (min over senders)", 'min(pushpipe_mqtt_connected{proc="mqtt-sender"})',
         "none"),
        ("Connect failures / s by reason",
         'sum by (reason) (rate(pushpipe_connect_failures_total{proc="mqtt-sender"}[5m]))', "ops"),
    ]),
]


def main():
    panels, pid, y = [], 1, 0
    for title, items in ROWS:
        panels.append({"type": "row", "title": title, "id": pid, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
        pid += 1
        y += 1
        for i, (ptitle, expr, unit) in enumerate(items):
            panels.append({
                "type": "timeseries", "title": ptitle, "id": pid, "datasource": DS,
                "gridPos": {"h": 7, "w": 8, "x": (i % 3) * 8, "y": y + (i // 3) * 7},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": [{"datasource": DS, "expr": expr, "refId": "A",
                             "legendFormat": "__auto"}],
            })
            pid += 1
        y += ((len(items) + 2) // 3) * 7
    dash = {
        "title": "pushpipe", "uid": "pushpipe", "schemaVersion": 39, "version": 1,
        "tags": ["pushpipe"], "timezone": "utc", "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource",
                                 "query": "prometheus", "label": "Prometheus"}]},
        "panels": panels,
    }
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pushpipe.json")
    with open(out, "w") as f:
        json.dump(dash, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
