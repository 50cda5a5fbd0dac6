#!/usr/bin/env python3
"""A consumer loop: worker.py [--lane L] [--lease S] [--max-jobs N]

Takes jobs under a lease, works on each, and acks it when the work succeeded or releases it (to be
tried again after --retry-delay seconds) when it failed. A job whose worker dies is not lost: its
lease runs out and the daemon hands it to another worker. While the daemon cannot be reached
(not started yet, restarting) it waits and tries again, up to 5 s apart.

The "work" here is a stand-in: a message starting with "fail-once" fails the first time this
worker sees it. Replace work() with yours.
"""
import argparse
import os
import signal
import sys
import time

import requests

from dispenserd_client import Client, DispenserdError

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--lane")
parser.add_argument("--lease", type=float, default=60)
parser.add_argument("--retry-delay", type=float, default=0)
parser.add_argument("--max-jobs", type=int, default=0, help="stop after acking this many (0: never)")
args = parser.parse_args()

client = Client(os.environ.get("DISPENSERD_URL", "http://127.0.0.1:8282"), os.environ.get("DISPENSERD_TOKEN"), os.environ.get("DISPENSERD_CA"))
seen = set()
stopping = False


def stop(*_):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)


def work(job):
    message = job["message"]
    if message.startswith("fail-once") and message not in seen:
        seen.add(message)
        raise RuntimeError("failed on the first try")


def log(text):
    print(text, flush=True)


def handle(job):
    """Works on one leased job; acks it, or releases it when the work failed. Returns 1 if acked."""
    try:
        work(job)
    except Exception as err:  # the work failed: put the job back for another try
        client.release(job["hash"], job["lease_token"], delay=args.retry_delay)
        log(f"released job {job['job_num']} ({job['message']}): {err}")
        return 0
    try:
        client.ack(job["hash"], job["lease_token"])
    except DispenserdError as err:
        # Code 9: the lease ran out before the ack; the job went back and may run again.
        log(f"could not ack job {job['job_num']}: {err}")
        return 0
    log(f"done job {job['job_num']} ({job['message']})")
    return 1


acked = 0
pause = 0.2
while not stopping and (args.max_jobs == 0 or acked < args.max_jobs):
    try:
        job = client.receive(lane=args.lane, lease=args.lease, block=True, timeout=5)
        if job is not None:
            acked += handle(job)
        pause = 0.2
    except (requests.ConnectionError, requests.Timeout) as err:
        # Not started yet, restarting, or gone for a while: a job leased before the break comes
        # back to the lane when its lease runs out.
        log(f"cannot reach dispenserd ({type(err).__name__}); trying again in {pause:.1f} s")
        time.sleep(pause)
        pause = min(pause * 2, 5)
sys.exit(0)
