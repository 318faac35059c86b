"""Run one ingestion that kills itself with SIGKILL at a chosen stage: ``python -m tests.pipelines.ingest.reindex_child
STORE SRC STAGE [COUNT]``. Prints ``stage <name>`` lines as it goes (flushed), for a parent that kills it itself."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from retrieval.embedder import SentenceTransformerEmbedder
from tests.pipelines.ingest.reindex_helpers import run_ingest


class KillAt:
    """Progress reporter that SIGKILLs the process when ``stage`` has advanced ``count`` times."""

    def __init__(self, stage: str, count: int) -> None:
        self.stage, self.count = stage, count

    def start(self, stage: str, total: int) -> None:
        print(f"stage {stage} {total}", flush=True)
        if stage == self.stage and self.count == 0:
            os.kill(os.getpid(), signal.SIGKILL)

    def advance(self, stage: str, amount: int = 1) -> None:
        if stage == self.stage:
            self.count -= amount
            if self.count <= 0:
                os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    store, src, stage = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    run_ingest(store, SentenceTransformerEmbedder(), [src], sync=True, progress=KillAt(stage, count))
    print("finished", flush=True)


if __name__ == "__main__":
    main()
