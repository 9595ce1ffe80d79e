"""Progress of a run, read from the store's ``progress/done`` flags.

Members mark each window done in the store as they finish it, on whichever worker they run;
the client polls those flags, so one mechanism serves every scheduler (synchronous, threads,
a local or a remote cluster).  On a terminal: a tqdm bar over all members' windows with its
rate and ETA; when the output is not a terminal: one line per finished member; under
``--quiet``: nothing.
"""

from __future__ import annotations

import sys

import numpy as np

from pipeline.store import progress

__all__ = ["Progress"]


class Progress:
    def __init__(self, path, tasks, *, quiet: bool = False, stream=None):
        self.path = path
        self.windows = np.array([t.windows for t in tasks])
        self.lead = len(tasks[0].grid.dims) if tasks else 1
        self.stream = stream or sys.stderr
        self.mode = "off" if quiet else ("bar" if getattr(self.stream, "isatty", lambda: False)() else "lines")
        self.finished: set[int] = set()
        self.bar = None
        if self.mode == "bar":
            import shutil

            from tqdm import tqdm

            # a terminal that reports no size (a bare pty) still gets a bar of the fallback width
            # (tqdm hides bars below the screen's last row, which is row 0 there)
            size = shutil.get_terminal_size(fallback=(100, 24))
            self.bar = tqdm(total=int(self.windows.sum()), unit="window", file=self.stream, ncols=size.columns or 100,
                            nrows=size.lines or 24, desc=f"{len(tasks)} member(s)", smoothing=0.1)
        self.poll(initial=True)

    def _done(self) -> np.ndarray:
        done = progress(self.path).astype(bool)  # zarr directly: a local path or a URL
        mask = np.arange(done.shape[1])[None, :] < self.windows[:, None]
        return done & mask

    def poll(self, initial: bool = False) -> None:
        if self.mode == "off":
            return
        try:
            done = self._done()
        except Exception:  # noqa: BLE001 - the store is being written; the next poll will see it
            return
        counts = done.sum(axis=1)
        if self.bar is not None:
            self.bar.n = int(counts.sum())
            self.bar.refresh()
            return
        for m in np.flatnonzero(counts == self.windows):
            if int(m) not in self.finished:
                self.finished.add(int(m))
                if not initial:
                    print(f"member {m} done ({len(self.finished)}/{len(self.windows)})", file=self.stream, flush=True)

    def close(self) -> None:
        self.poll()
        if self.bar is not None:
            self.bar.close()
