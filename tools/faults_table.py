"""Print the fault suite's figures (build/faults.json, written by `make test-faults`) as the
Markdown table of docs/reliability.md.

    .venv/bin/python tools/faults_table.py [build/faults.json]
"""

from __future__ import annotations

import json
import pathlib
import sys

ROWS = [
    ("rules_worker_sigkill", "rules worker SIGKILL (2 workers)",
     lambda s: f"{s['events']:,} events, {s['expected']:,} alerts; {s['redelivered_batches']} batches redelivered",
     lambda s: f"{s['lost']} / {s['duplicated']}",
     lambda s: f"dead worker's alerts {s['catch_up_s']} s after the kill (ack wait {s['ack_wait_s']:g} s); "
               f"new events unaffected ({s['recovery_s']} s); core NATS duplicates {s['core_nats_duplicates']}"),
    ("nats_server_sigkill_restart", "nats-server SIGKILL, restart after 2 s",
     lambda s: f"{s['events']:,} events, {s['expected']:,} alerts",
     lambda s: f"{s['lost']} / {s['duplicated']}; subscriber {s['subscriber']['lost']} / {s['subscriber']['duplicated']}",
     lambda s: f"publisher blocked {s['publish_outage_s']} s (server down {s['broker_down_s']} s); first alert "
               f"{s['first_alert_after_restart_s']} s after the restart"),
    ("api_restart_under_subscribers", "API SIGKILL + restart, then SIGTERM + restart (2 subscribers)",
     lambda s: f"{s['events']:,} events, {s['expected']:,} alerts",
     lambda s: "; ".join(f"{x['lost']} / {x['duplicated']}" for x in s["subscribers"]),
     lambda s: f"subscribers receive again {max(s['resumed_after_kill_restart_s'])} s (kill) and "
               f"{max(s['resumed_after_term_restart_s'])} s (term) after the restart"),
    ("stalled_subscriber", "one subscriber stops reading (queue 200)",
     lambda s: f"{s['alerts']:,} alerts",
     lambda s: f"fast subscriber {s['fast_subscriber']['lost']} / {s['fast_subscriber']['duplicated']}; stream "
               f"{s['lost']} / {s['duplicated']}",
     lambda s: f"stalled: {s['stalled']['received']:,} received + {s['stalled']['dropped_before_sum']:,} dropped "
               f"(all counted: {s['stalled']['drops_reported']:,} in drop reports)"),
    ("alerts_stream_budget_full", "TIERCEL_ALERTS max_bytes 256 KiB",
     lambda s: f"{s['alerts']:,} alerts",
     lambda s: f"live subscriber {s['live_subscriber']['lost']} / {s['live_subscriber']['duplicated']}; "
               f"publish failures {s['rules_publish_failures']}",
     lambda s: f"stream kept {s['retained']:,} ({s['stream_bytes']:,} B), deleted {s['deleted_by_stream']:,} "
               f"oldest (counted by the stream); resume after a deleted one: {s['resume_after_deleted']}"),
    ("cluster_node_loss", "3-node cluster, events-stream leader SIGKILLed",
     lambda s: f"{s['events']:,} events, {s['expected']:,} alerts; R3 streams and KV",
     lambda s: f"{s['lost']} / {s['duplicated']}; subscriber {s['subscriber']['lost']} / {s['subscriber']['duplicated']}",
     lambda s: f"new leader after {s['leader_elected_after_s']} s; publisher blocked {s['publish_outage_s']} s; "
               f"rules put while down ok={s['rules_put_while_down']['ok']}; restarted node current after "
               f"{s['node_current_after_restart_s']} s"),
]


def main(path: str) -> None:
    data = json.loads(pathlib.Path(path).read_text())["scenarios"]
    print("| Fault | Load | Lost / duplicated | Recovery |")
    print("|---|---|---|---|")
    for key, name, load, lost, rec in ROWS:
        s = data.get(key)
        if s is None:
            print(f"| {name} | not run | | |")
            continue
        print(f"| {name} | {load(s)} | {lost(s)} | {rec(s)} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/faults.json")
