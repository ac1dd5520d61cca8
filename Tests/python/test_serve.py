"""`shoal serve`: coordinator and one node in one process, the newcomer's first run."""
import os
import subprocess

import numpy as np

import shoal
from conftest import shoal_bin, wait_for


def start(directory):
    port_file = os.path.join(directory, "port")
    if os.path.exists(port_file):
        os.remove(port_file)
    log = open(os.path.join(directory, "log"), "ab")
    proc = subprocess.Popen([shoal_bin(), "serve", "--listen", "127.0.0.1:0", "--data", os.path.join(directory, "shoal-data"),
                             "--port-file", port_file], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def port():
        assert proc.poll() is None, open(os.path.join(directory, "log")).read()[-2000:]
        try:
            return int(open(port_file).read().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0
    return proc, log, f"127.0.0.1:{wait_for(port, 60, 'shoal serve to listen')}"


def stop(proc, log):
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def test_serve_runs_the_whole_api_and_keeps_data(tmp_path):
    directory = str(tmp_path)
    vectors = np.random.default_rng(4).standard_normal((300, 16)).astype(np.float32)
    proc, log, address = start(directory)
    try:
        with shoal.Client(address) as client:
            col = client.create_collection("docs", dimension=16, metric="l2")
            col.upsert(ids=[f"d{i}" for i in range(300)], vectors=vectors, metadatas=[{"even": i % 2 == 0} for i in range(300)])
            assert col.count() == 300 and col.count(where={"even": True}) == 150
            assert col.search(vectors[5], k=1)[0].id == "d5"
            before = [h.id for h in col.search(vectors[9], k=5, exact=True)]
    finally:
        stop(proc, log)
    proc, log, address = start(directory)  # a new port: the node's address is updated, its id kept
    try:
        with shoal.Client(address) as client:
            col = client.get_collection("docs")
            assert col.count() == 300
            assert [h.id for h in col.search(vectors[9], k=5, exact=True)] == before
    finally:
        stop(proc, log)
