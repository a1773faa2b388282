"""A Spark standalone master and one worker on 127.0.0.1, started with pyspark's own scripts."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from rental_kpis.spark.session import local_environment


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as reply:
            return int(json.load(reply).get("aliveworkers", 0))
    except OSError:
        return 0


@contextmanager
def standalone_cluster(workdir: Path, cores: int = 2, memory: str = "2g", timeout: float = 90):
    """Yield the master URL; both JVMs are stopped by PID on the way out, whatever happens."""
    env = local_environment()
    spark_class = str(Path(env["SPARK_HOME"]) / "bin" / "spark-class")
    port, ui_port, worker_ui = free_port(), free_port(), free_port()
    url = f"spark://127.0.0.1:{port}"
    workdir.mkdir(parents=True, exist_ok=True)
    logs = [(workdir / name).open("w") for name in ("master.log", "worker.log")]
    processes = [
        subprocess.Popen(
            [
                spark_class,
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--webui-port",
                str(ui_port),
            ],
            env=env,
            cwd=workdir,
            stdout=logs[0],
            stderr=subprocess.STDOUT,
        )
    ]
    try:
        processes.append(
            subprocess.Popen(
                [
                    spark_class,
                    "org.apache.spark.deploy.worker.Worker",
                    url,
                    "--host",
                    "127.0.0.1",
                    "--cores",
                    str(cores),
                    "--memory",
                    memory,
                    "--webui-port",
                    str(worker_ui),
                    "--work-dir",
                    str(workdir / "work"),
                ],
                env=env,
                cwd=workdir,
                stdout=logs[1],
                stderr=subprocess.STDOUT,
            )
        )
        deadline = time.monotonic() + timeout
        while _alive_workers(ui_port) < 1:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(f"standalone cluster did not start; see {workdir}/*.log")
            time.sleep(0.5)
        yield url, [p.pid for p in processes]
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs:
            log.close()
