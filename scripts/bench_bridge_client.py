#!/usr/bin/env python3
"""Python grpcio client for `shoal-bench bridge`: calls a raw-bytes echo method.

Prints JSON: p50_us, p99_us (one call at a time) and calls_per_s with --in-flight
calls outstanding (grpc futures).
"""
import argparse
import json
import threading
import time

import grpc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--method", required=True)
    ap.add_argument("--payload", type=int, default=256)
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--throughput-calls", type=int, default=20000)
    ap.add_argument("--in-flight", type=int, default=64)
    args = ap.parse_args()

    channel = grpc.insecure_channel(args.target)
    call = channel.unary_unary(args.method)  # bytes in, bytes out
    request = b"\x5a" * args.payload
    for _ in range(300):
        call(request)
    lat = []
    for _ in range(args.calls):
        t = time.perf_counter()
        call(request)
        lat.append((time.perf_counter() - t) * 1e6)
    lat.sort()

    done = threading.Semaphore(0)
    slots = threading.Semaphore(args.in_flight)
    errors = []

    def finished(fut):
        if fut.exception() is not None:
            errors.append(fut.exception())
        slots.release()
        done.release()

    t = time.perf_counter()
    for _ in range(args.throughput_calls):
        slots.acquire()
        call.future(request).add_done_callback(finished)
    for _ in range(args.throughput_calls):
        done.acquire()
    elapsed = time.perf_counter() - t
    if errors:
        raise SystemExit(f"{len(errors)} calls failed: {errors[0]}")
    print(json.dumps({
        "p50_us": lat[len(lat) // 2], "p99_us": lat[int(len(lat) * 0.99)],
        "calls_per_s": args.throughput_calls / elapsed, "in_flight": args.in_flight,
    }))


if __name__ == "__main__":
    main()
