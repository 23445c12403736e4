"""Helpers for tests that start real scheduler processes on the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

from django.db import connection

from tests.testapp.models import FireRecord

ROOT = Path(__file__).resolve().parent.parent


class Processes:
    """Scheduler subprocesses of one test; their output is kept for the failure report."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen] = []
        self.files: list = []
        #: Processes that end on SIGTERM without handling it (runserver, say).
        self.killable: set[int] = set()

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env["METRONOME_TEST_DB_NAME"] = str(connection.settings_dict["NAME"])
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
        env.update(extra)
        return env

    def start(
        self, args: list[str], *, handles_sigterm: bool = True, **env: str
    ) -> subprocess.Popen:
        log = open(self.tmp_path / f"proc-{len(self.procs)}.log", "w")
        self.files.append(log)
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        if not handles_sigterm:
            self.killable.add(proc.pid)
        return proc

    def runscheduler(self, jobs: str) -> subprocess.Popen:
        return self.start(
            ["-m", "django", "runscheduler", "--settings=tests.settings_procs"],
            METRONOME_PROC_JOBS=jobs,
        )

    def clean_exits(self, codes: list[int | None]) -> bool:
        """Whether every process ended as it should: 0, or killed on purpose."""
        allowed = {0, -signal.SIGKILL}
        return all(
            code in allowed or (proc.pid in self.killable and code == -signal.SIGTERM)
            for proc, code in zip(self.procs, codes, strict=True)
        )

    def stop(self, timeout: float = 20) -> list[int | None]:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(timeout))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
        for log in self.files:
            log.close()
        return codes

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name} ---\n{path.read_text()}"
            for path in sorted(self.tmp_path.glob("proc-*.log"))
        )


def duplicates() -> list[tuple[str, datetime]]:
    """Fires the jobs themselves saw more than once."""
    seen = Counter(FireRecord.objects.values_list("job_id", "run_time"))
    return [fire for fire, count in seen.items() if count > 1]
