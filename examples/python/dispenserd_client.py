"""A small client of dispenserd's HTTP API, with requests (Debian: python3-requests).

    from dispenserd_client import Client
    client = Client("http://127.0.0.1:8282", token=None)
    client.schedule("resize 1.png", lane="main", priority=10)
    job = client.receive(lane="main", lease=30, block=True, timeout=30)
    if job: client.ack(job["hash"], job["lease_token"])

Error replies raise DispenserdError (with the reply's code); a daemon that cannot be reached
raises requests.ConnectionError, which a consumer loop waits out and retries.
"""
import requests

EMPTY_QUEUE = 2


class DispenserdError(Exception):
    def __init__(self, code, http_status, message):
        super().__init__(f"{message} (code {code}, HTTP {http_status})")
        self.code = code
        self.http_status = http_status


class Client:
    def __init__(self, url="http://127.0.0.1:8282", token=None, ca=None):
        """`ca`: for an https:// daemon with a self-signed certificate, the certificate (a PEM file)."""
        self.url = url.rstrip("/")
        self.session = requests.Session()
        # Given with every request: a session's own `verify` loses to REQUESTS_CA_BUNDLE.
        self.verify = ca or True
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, path, body=None, params=None, wait=10):
        # POST with a JSON body, GET without one; `wait` bounds the reply (a blocking receive adds
        # its own timeout). The daemon closes idle keep-alive connections after about 10 s: a
        # request that fails on such a reused connection is sent once more on a fresh one.
        def send():
            if body is None:
                return self.session.get(self.url + path, params=params, timeout=(5, wait), verify=self.verify)
            fields = {k: v for k, v in body.items() if v is not None}
            return self.session.post(self.url + path, json=fields, timeout=(5, wait), verify=self.verify)

        try:
            reply = send()
        except requests.exceptions.SSLError:
            raise
        except requests.ConnectionError:
            self.session.close()
            reply = send()
        data = reply.json()
        if data.get("status") == "error":
            raise DispenserdError(data.get("code"), reply.status_code, data.get("message"))
        return data

    def status(self):
        return self.call("/")

    def schedule(self, message, lane=None, priority=None, delay=None):
        return self.call("/schedule", {"message": message, "lane": lane, "priority": priority, "delay": delay})

    def schedule_arguments(self, lane, arguments, priority=None):
        """A job for a runner lane: its arguments as an object."""
        return self.call("/schedule", {"lane": lane, "arguments": arguments, "priority": priority})

    def receive(self, lane=None, lease=None, block=False, timeout=30):
        """The next job (a dict), or None when the lane is empty (or stayed empty for `timeout` s)."""
        if block:
            job = self.call("/receive_block", {"lane": lane, "lease": lease, "timeout": timeout}, wait=timeout + 10)
        else:
            job = self.call("/receive_noblock", {"lane": lane, "lease": lease})
        return None if job.get("code") == EMPTY_QUEUE else job

    def ack(self, hash, lease_token):
        return self.call("/ack", {"hash": hash, "lease_token": lease_token})

    def release(self, hash, lease_token, delay=None):
        return self.call("/release", {"hash": hash, "lease_token": lease_token, "delay": delay})

    def touch(self, hash, lease_token, lease=None):
        return self.call("/touch", {"hash": hash, "lease_token": lease_token, "lease": lease})

    def job(self, hash):
        return self.call("/job", params={"hash": hash})
