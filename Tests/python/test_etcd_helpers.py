"""The etcd test helper itself: start, restart keeping data, wipe, pause, and cleanup."""
import base64
import json
import urllib.request

import pytest

from etcd_helpers import Etcd


def kv(etcd, path, body):
    """One call to etcd's JSON gateway (keys and values base64)."""
    request = urllib.request.Request(f"http://{etcd.endpoint}/v3/kv/{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.loads(reply.read())


def b64(text):
    return base64.b64encode(text.encode()).decode()


def get(etcd, key):
    kvs = kv(etcd, "range", {"key": b64(key)}).get("kvs", [])
    return base64.b64decode(kvs[0]["value"]).decode() if kvs else None


def test_restart_keeps_data_and_wipe_deletes_it(tmp_path):
    with Etcd(tmp_path) as etcd:
        kv(etcd, "put", {"key": b64("/k"), "value": b64("v")})
        etcd.stop()
        assert not etcd.running and not etcd.healthy()
        etcd.start()
        assert get(etcd, "/k") == "v"
        etcd.wipe()
        etcd.start()
        assert get(etcd, "/k") is None


def test_pause_and_resume(tmp_path):
    with Etcd(tmp_path) as etcd:
        etcd.pause()
        assert not etcd.healthy()
        etcd.resume()
        assert etcd.healthy()


def test_leaving_the_block_kills_etcd(tmp_path):
    with Etcd(tmp_path) as etcd:
        proc = etcd.proc
    assert proc.poll() is not None
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://{etcd.endpoint}/health", timeout=1)
