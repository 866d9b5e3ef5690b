"""`make bench`: the stock botbuilder echo bot and Seatdesk, in the same run on the same machine.

Measures turns/s and p50/p99 latency at 1, 8 and 32 concurrent conversations for the echo bot,
the same echo turn behind Seatdesk's adapter (bench/seatdesk_echo.py), Seatdesk's "dashboard" (database read + card) and a click on a subscription's Details, on SQLite
(and PostgreSQL when SEATDESK_BENCH_POSTGRES_URL is set or --postgres is given), plus each
server's memory over 10,000 turns. Prints a table with Seatdesk/echo ratios and writes
bench/RESULTS.md. It reports numbers; it asserts nothing about them."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.loadgen import LoadGenerator, LocalConnector, Measurement, Person, card_action, message, new_conversations

STOCK_ECHO = "echo bot (stock botbuilder)"
ROOT = Path(__file__).absolute().parent.parent  # not resolve(): a linked checkout runs its own code


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/messages"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def _start(name: str, args: list[str], env: dict[str, str] | None = None, wait_seconds: float = 120) -> Server:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", *args[:1], str(port), *args[1:]],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=open(Path(tempfile.gettempdir()) / f"seatdesk-bench-{name}.log", "w"),
    )
    server = Server(name, process, port)
    deadline = time.monotonic() + wait_seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {tempfile.gettempdir()}/seatdesk-bench-{name}.log")
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return server
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{name} did not start within {wait_seconds} s")


def _demo_people(database_url: str) -> list[Person]:
    out = subprocess.run(
        [sys.executable, "-m", "bot", "users", "--json"],
        cwd=ROOT, env={**os.environ, "SEATDESK_DATABASE_URL": database_url}, capture_output=True, text=True, check=True,
    )
    users = json.loads(out.stdout)
    # The demo's Fabrikam admin sees the most (costs included): the heaviest ordinary card.
    admins = sorted((u for u in users if u.get("role") == "admin" and not u.get("partner_staff")), key=lambda u: u.get("customer") != "Fabrikam GmbH")
    chosen = admins or users
    return [Person(u["tenant_id"], u["aad_object_id"], u["name"]) for u in chosen]


async def _details_data(gen: LoadGenerator, who: Person) -> dict:
    """Open the subscription list once and take the first Details button's data, as a click would."""
    conversation = new_conversations(1)[0]
    ok, _ = await gen.turn(message("subscriptions"), conversation, who)
    reply = gen.connector.last.get(conversation)
    if not ok or not reply:
        raise RuntimeError("Seatdesk did not answer 'subscriptions'")
    found: list[dict] = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "Action.Execute" and node.get("verb") == "subscription.details":
                found.append(node.get("data") or {})
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(reply.get("attachments"))
    if not found:
        raise RuntimeError("the subscription list has no Details button")
    return {k: v for k, v in found[0].items() if k != "verb"}


async def _measure(gen: LoadGenerator, scenario, label: str, people: list[Person], args) -> list[Measurement]:
    results = []
    for concurrency in args.concurrency:
        conversations = new_conversations(concurrency)
        await gen.run(scenario, concurrency=concurrency, turns=args.warmup, max_seconds=args.max_seconds, people=people, conversations=conversations)
        result = await gen.run(
            scenario, concurrency=concurrency, turns=args.turns, max_seconds=args.max_seconds, people=people, conversations=conversations, label=label
        )
        print(f"  {label:<28} x{concurrency:<3} {result.turns_per_second:8.1f} turns/s  p50 {result.percentile(50)*1000:7.1f} ms  p99 {result.percentile(99)*1000:7.1f} ms  errors {result.errors}", flush=True)
        results.append(result)
    return results


async def _memory(gen: LoadGenerator, server: Server, scenario, people: list[Person], args) -> list[tuple[int, float]]:
    """RSS after a warm-up of 1,000 turns, then every 2,000 of `memory_turns` turns at 8 conversations."""
    conversations = new_conversations(8)
    await gen.run(scenario, concurrency=8, turns=1000, max_seconds=args.memory_seconds, people=people, conversations=conversations)
    samples = [(0, _rss_mb(server.process.pid))]
    done = 0
    step = max(1, args.memory_turns // 5)
    while done < args.memory_turns:
        result = await gen.run(scenario, concurrency=8, turns=min(step, args.memory_turns - done), max_seconds=args.memory_seconds, people=people, conversations=conversations)
        done += result.turns
        samples.append((done, _rss_mb(server.process.pid)))
        if result.turns == 0:
            break
    print(f"  memory {server.name}: " + ", ".join(f"{t}: {mb:.1f} MB" for t, mb in samples), flush=True)
    return samples


def _table(rows: list[Measurement], echo: dict[int, Measurement]) -> str:
    lines = [
        "| scenario | conversations | turns | turns/s | p50 ms | p99 ms | errors | turns/s vs echo |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in rows:
        base = echo.get(m.concurrency)
        ratio = f"{m.turns_per_second / base.turns_per_second:.1f}×" if base and base.turns_per_second and m.scenario != base.scenario else "—"
        lines.append(
            f"| {m.scenario} | {m.concurrency} | {m.turns} | {m.turns_per_second:.0f} | {m.percentile(50)*1000:.1f} | {m.percentile(99)*1000:.1f} | {m.errors} | {ratio} |"
        )
    return "\n".join(lines)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--turns", type=int, default=2000, help="measured turns per scenario and concurrency")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--max-seconds", type=float, default=30, help="time limit per measurement")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32])
    parser.add_argument("--memory-turns", type=int, default=10_000)
    parser.add_argument("--memory-seconds", type=float, default=300)
    parser.add_argument("--postgres", default=os.environ.get("SEATDESK_BENCH_POSTGRES_URL", ""), help="a postgresql+asyncpg:// URL to a throwaway database")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--note", default="", help="a line written above the table (e.g. what changed)")
    args = parser.parse_args(argv)

    connector = LocalConnector()
    await connector.start()
    servers: list[Server] = []
    rows: list[Measurement] = []
    memory: dict[str, list[tuple[int, float]]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="seatdesk-bench-") as tmp:
            databases = [("SQLite", f"sqlite+aiosqlite:///{tmp}/bench.db")]
            if args.postgres:
                databases.append(("PostgreSQL", args.postgres))
            echo = await _start("echo", ["bench.echo_bot"])
            servers.append(echo)
            print("stock botbuilder 4.17.1 echo bot", flush=True)
            async with LoadGenerator(echo.endpoint, connector) as gen:
                echo_rows = await _measure(gen, message("hello", STOCK_ECHO), STOCK_ECHO, [Person()], args)
                rows += echo_rows
                memory["echo bot"] = await _memory(gen, echo, message("hello"), [Person()], args)
            echo.stop()
            # The same echo turn behind Seatdesk's edge: what the adapter layer alone costs.
            edge = await _start("seatdesk-echo", ["bench.seatdesk_echo", databases[0][1].replace("bench.db", "edge.db")])
            servers.append(edge)
            print("the echo bot behind Seatdesk's adapter", flush=True)
            async with LoadGenerator(edge.endpoint, connector) as gen:
                rows += await _measure(gen, message("hello"), "echo bot on Seatdesk's adapter", [Person()], args)
            edge.stop()
            for db_name, url in databases:
                seatdesk = await _start(f"seatdesk-{db_name.lower()}", ["bench.seatdesk_server", url])
                servers.append(seatdesk)
                people = _demo_people(url)
                print(f"Seatdesk on {db_name} ({len(people)} people)", flush=True)
                async with LoadGenerator(seatdesk.endpoint, connector) as gen:
                    data = await _details_data(gen, people[0])
                    rows += await _measure(gen, message("dashboard"), f"Seatdesk dashboard ({db_name})", people[:1], args)
                    rows += await _measure(gen, card_action("subscription.details", data), f"Seatdesk details click ({db_name})", people[:1], args)
                    memory[f"Seatdesk dashboard ({db_name})"] = await _memory(gen, seatdesk, message("dashboard"), people[:1], args)
                seatdesk.stop()
    finally:
        for server in servers:
            server.stop()
        await connector.stop()

    echo_by_concurrency = {m.concurrency: m for m in rows if m.scenario == STOCK_ECHO}
    table = _table(rows, echo_by_concurrency)
    memory_lines = [f"| server | RSS after warm-up (MB) | after {args.memory_turns:,} more turns (MB) | growth (MB) | samples (turns: MB) |", "|---|---:|---:|---:|---|"]
    for name, samples in memory.items():
        first, last = samples[0][1], samples[-1][1]
        memory_lines.append(f"| {name} | {first:.1f} | {last:.1f} | {last - first:+.1f} | " + ", ".join(f"{t}: {mb:.1f}" for t, mb in samples) + " |")
    try:
        revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        revision = ""
    header = (
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.node() or 'this machine'}: "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()} {platform.release()}"
        f"{f', git {revision}' if revision else ''}. Load generator, Bot Connector and bot share the machine. "
        f"{args.turns} measured turns (after {args.warmup} warm-up turns) or {args.max_seconds:g} s per row."
    )
    generated = "\n\n".join(p for p in [header, args.note, table, "## Memory (8 conversations)", "\n".join(memory_lines)] if p)
    report = f"# Benchmark results (`make bench`)\n\n{generated}\n"
    # Keep the explanations around the latest figures: only the marked part is rewritten.
    start, end = "<!-- bench:start", "<!-- bench:end -->"
    existing = args.output.read_text() if args.output.is_file() else ""
    if start in existing and end in existing:
        head, rest = existing.split(start, 1)
        marker_line, _ = rest.split("\n", 1)
        tail = rest.split(end, 1)[1]
        report = f"{head}{start}{marker_line}\n{generated}\n{end}{tail}"
    print()
    print(table)
    print()
    print("\n".join(memory_lines))
    args.output.write_text(report)
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    # Stopped from outside (timeout, kill): still stop the servers this run started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(asyncio.run(main()))
