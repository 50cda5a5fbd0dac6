#!/usr/bin/env python3
"""Queues each argument as a job: producer.py [--lane L] [--priority N] MESSAGE...

The daemon is $DISPENSERD_URL (default http://127.0.0.1:8282), its token $DISPENSERD_TOKEN, and
$DISPENSERD_CA a certificate to trust for an https:// daemon with a self-signed one.
"""
import argparse
import os

from dispenserd_client import Client

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--lane")
parser.add_argument("--priority", type=int)
parser.add_argument("messages", nargs="+")
args = parser.parse_args()

client = Client(os.environ.get("DISPENSERD_URL", "http://127.0.0.1:8282"), os.environ.get("DISPENSERD_TOKEN"), os.environ.get("DISPENSERD_CA"))
for message in args.messages:
    reply = client.schedule(message, lane=args.lane, priority=args.priority)
    print(f"queued job {reply['job_num']}: {message}", flush=True)
