"""An informer in a child process, for F9 (``python -m tests.faults.informer_process``): a
SharedInformerFactory on the ConfigMaps of ``--namespace`` whose handler counts notifications per
key, as F1's does in-process. Being a process, the test can freeze it (SIGSTOP) past an etcd
compaction. On SIGUSR1 it reports ``{"fault": "state", ...}``: the cache (key -> resourceVersion),
adds, deletes (DeletedFinalStateUnknown ones also under ``unknown``) and how often it listed.
Reports ``synced`` once its cache is filled.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections import Counter
from types import FrameType
from typing import Any

from rook_py.framework.cache import DeletedFinalStateUnknown, SharedInformerFactory, meta_namespace_key
from rook_py.framework.client import Client, load_config
from rook_py.framework.logging import configure_logging


class Notifications:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.adds: Counter[str] = Counter()
        self.deletes: Counter[str] = Counter()
        self.unknown: Counter[str] = Counter()

    def on_add(self, obj: Any, is_initial_list: bool) -> None:
        with self.lock:
            self.adds[meta_namespace_key(obj)] += 1

    def on_update(self, old: Any, new: Any) -> None:
        pass

    def on_delete(self, obj: Any) -> None:
        with self.lock:
            if isinstance(obj, DeletedFinalStateUnknown):
                self.deletes[obj.key] += 1
                self.unknown[obj.key] += 1
            else:
                self.deletes[meta_namespace_key(obj)] += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--min-watch-timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    configure_logging("warning", "json", stream=sys.stderr)
    client = Client(load_config(), user_agent="f9-informer")
    factory = SharedInformerFactory(client, namespace=args.namespace, informer_options={
        "reflector_options": {"min_watch_timeout": args.min_watch_timeout}})
    informer = factory.informer("v1", "ConfigMap")
    notes = Notifications()
    informer.add_event_handler(notes)
    stop = threading.Event()
    dump = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        (dump if signum == signal.SIGUSR1 else stop).set()

    for sig in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    factory.start(stop)
    if factory.wait_for_cache_sync(60):
        print(json.dumps({"fault": "synced"}), flush=True)
    while not stop.wait(0.05):
        if dump.is_set():
            dump.clear()
            with notes.lock:
                state = {"fault": "state", "adds": dict(notes.adds), "deletes": dict(notes.deletes),
                         "unknown": dict(notes.unknown)}
            state["cache"] = {meta_namespace_key(o): o["metadata"]["resourceVersion"]
                              for o in informer.indexer.list()}
            state["lists"] = informer.reflector.lists
            print(json.dumps(state), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
