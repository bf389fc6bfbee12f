"""Run one scenario: build the lab, capture, run the socket programs, write truth.json."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .scenarios import Scenario
from .topo import TCP_SYSCTLS, Lab

HOST_ROLE = {"client": "c", "server": "s"}


class ScenarioError(RuntimeError):
    pass


def wait_event(sync: Path, event: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not (sync / event).exists():
        if time.monotonic() > deadline:
            raise ScenarioError(f"timeout waiting for event {event!r}")
        time.sleep(0.002)


def start_agent(
    lab: Lab, host: str, steps: list, start: float, sync: Path
) -> tuple[subprocess.Popen, Path]:
    log = sync / f"{host}.log.json"
    prog = sync / f"{host}.prog.json"
    prog.write_text(
        json.dumps(
            {"start": start, "host": host, "sync": str(sync), "log": str(log), "steps": steps}
        )
    )
    err = open(sync / f"{host}.stderr", "w")  # noqa: SIM115 - closed with the process
    proc = lab.popen(
        f"agent-{host}",
        HOST_ROLE[host],
        [sys.executable, "-m", "record.agent", str(prog)],
        stdout=subprocess.DEVNULL,
        stderr=err,
    )
    err.close()
    return proc, log


def spawn_helper(lab: Lab, role: str, module: str, args: list[str]) -> subprocess.Popen:
    """Start a helper program (``python3 -m MODULE ARGS``, e.g. a packet injector on the
    router) in the background and wait until it prints ``ready``; the lab stops it at the
    end if it has not exited by itself."""
    proc = lab.popen(
        module,
        role,
        [sys.executable, "-m", module, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().strip() if proc.stdout else ""
    if line != "ready":
        err = proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
        raise ScenarioError(f"{module} did not start: {line!r} {err[-400:]}")
    return proc


def limits_for(sc: Scenario, sockets: list[dict]) -> dict:
    out: dict[str, dict] = {}
    names = {}
    for sock in sockets:
        names[f"{sock['host']}:{sock['_name']}"] = sock
    for key, limit in sc.capture_limits.items():
        # A limit is a reason, or {"reason": ..., "expect": {...}}: what pcapdiag is expected
        # to report instead of the first error, because the capture alone cannot show it.
        entry = dict(limit) if isinstance(limit, dict) else {"reason": limit}
        sock = names.get(key)
        if sock is None:
            out[key] = entry
        else:
            out[f"{sock['host']} {sock['local']}"] = {"remote": sock["remote"], **entry}
    return out


def run_scenario(sc: Scenario, outdir: Path, prefix: str, delay_ms: float = 2.0) -> dict:
    dest = outdir / sc.name
    dest.mkdir(parents=True, exist_ok=True)
    sync = Path(tempfile.mkdtemp(prefix="pdrec-sync-"))
    lab = Lab(prefix, delay_ms=delay_ms)
    killed: dict[str, float] = {}
    try:
        lab.build()
        for key, value in sc.sysctls.items():
            for role in ("c", "s"):
                lab.sysctl(role, key, value)
        for step in sc.setup:
            _, role, cmd = step
            lab.nsexec(role, *cmd)
        tcpdumps = [
            lab.start_capture("c", dest / "client.pcap"),
            lab.start_capture("s", dest / "server.pcap"),
        ]
        time.sleep(0.2)
        start = time.time()
        agents: dict[str, tuple[subprocess.Popen, Path]] = {}
        if sc.server is not None:
            agents["server"] = start_agent(lab, "server", sc.server, start, sync)
        agents["client"] = start_agent(lab, "client", sc.client, start, sync)
        for step in sc.control:
            op, *args = step
            if op == "wait":
                wait_event(sync, args[0], *args[1:])
            elif op == "signal":
                (sync / args[0]).write_text(str(time.time() - start))
            elif op == "sleep":
                time.sleep(float(args[0]))
            elif op == "cmd":
                lab.nsexec(args[0], *args[1])
            elif op == "spawn":
                spawn_helper(lab, args[0], args[1], [str(a) for a in args[2]])
            elif op == "kill":
                proc = agents[args[0]][0]
                os.kill(proc.pid, signal.SIGKILL)
                killed[args[0]] = round(time.time() - start, 6)
                proc.wait(5)
            else:
                raise ScenarioError(f"unknown control op {op}")
        client_proc = agents["client"][0]
        try:
            client_proc.wait(sc.timeout)
        except subprocess.TimeoutExpired as exc:
            raise ScenarioError("client program did not finish") from exc
        if "server" in agents and "server" not in killed:
            try:
                agents["server"][0].wait(10)
            except subprocess.TimeoutExpired as exc:
                raise ScenarioError("server program did not finish") from exc
        for host, (proc, _log) in agents.items():
            if host not in killed and proc.returncode != 0:
                err = (sync / f"{host}.stderr").read_text()
                raise ScenarioError(f"{host} program failed ({proc.returncode}): {err[-800:]}")
        time.sleep(0.5)  # trailing ACKs / RSTs
        for proc in tcpdumps:
            lab.stop_process(proc, signal.SIGTERM)
        sysctls = {}
        # The shortened timers, and any the scenario sets on top of them.
        for key in dict.fromkeys([*TCP_SYSCTLS, "net.ipv4.tcp_syn_linear_timeouts", *sc.sysctls]):
            value = lab.read_sysctl("c", key)
            sysctls[key] = int(value) if value.isdigit() else value
        sockets: list[dict] = []
        for host in ("client", "server"):
            if host not in agents:
                continue
            log = json.loads(agents[host][1].read_text())
            names = [
                n
                for n in json.loads((sync / f"{host}.prog.json").read_text())["steps"]
                if n[0] in ("socket", "accept")
            ]
            sock_names = [n[1] if n[0] == "socket" else n[2] for n in names]
            for name, sock in zip(sock_names, log["sockets"], strict=False):
                sock["_name"] = name
                if host in killed and (not sock["calls"] or sock["calls"][-1]["call"] != "close"):
                    sock["calls"].append(
                        {
                            "call": "kill",
                            "result": "ok",
                            "errno": None,
                            "t": killed[host],
                            "signal": "SIGKILL",
                        }
                    )
                sockets.append(sock)
        truth = {
            "scenario": sc.name,
            "description": sc.description + f" (Client link: {delay_ms:g} ms one-way delay "
            "through a user-space AF_PACKET forwarder.)",
            "kernel": platform.release(),
            "sysctls": sysctls,
            "sockets": [{k: v for k, v in s.items() if k != "_name"} for s in sockets],
        }
        if sc.origin is not None:
            truth["origin"] = sc.origin
        if sc.cause_by_host:
            truth["origin_by_host"] = sc.cause_by_host
        limits = limits_for(sc, sockets)
        if limits:
            truth["capture_limits"] = limits
        (dest / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
        return truth
    finally:
        lab.close()
        shutil.rmtree(sync, ignore_errors=True)
