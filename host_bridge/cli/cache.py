"""``pixelsep cache``: list the analysis cache, clear it, or prune it to a size (least recently used first)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

DESCRIPTION = (
    "Analyses are kept on disk (default ~/.cache/pixelsep, or $PIXELSEP_CACHE) so that a clip is analysed once. "
    "`list` shows each entry (clip, model, size, last used) and the total; `clear` removes every entry not in use; "
    "`prune --max-size SIZE` removes the least recently used entries until the cache holds at most SIZE (e.g. 500M, "
    "2G). After each new analysis the cache is pruned to $PIXELSEP_CACHE_MAX (default 20G). Entries that a running "
    "pixelsep has open are never removed; temporary folders left by killed runs (over an hour old) are."
)


def add_parser(commands) -> None:
    parser = commands.add_parser("cache", help="list, clear or prune the analysis cache", description=DESCRIPTION)
    parser.add_argument("action", choices=("list", "clear", "prune"), help="what to do")
    parser.add_argument("--max-size", metavar="SIZE", help="prune: the size to keep the cache under, e.g. 500M, 2G")
    parser.add_argument("--cache-dir", type=Path, help="the cache folder (default: ~/.cache/pixelsep)")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from pixelsep_plugin.errors import InputError
    from pixelsep_plugin.runtime import cache
    from pixelsep_plugin.runtime.analysis import default_cache_root

    out = out or sys.stdout
    if args.action == "prune" and not args.max_size:
        raise InputError("cache prune needs --max-size SIZE (e.g. --max-size 2G)")
    if args.action != "prune" and args.max_size:
        raise InputError("--max-size goes with `cache prune` only")
    max_bytes = cache.parse_size(args.max_size) if args.max_size else None
    root = args.cache_dir or default_cache_root()
    if args.action == "list":
        entries = cache.list_entries(root)
        now = time.time()
        for entry in reversed(entries):  # most recently used first
            age = _age(now - entry.last_used)
            used = " (in use)" if entry.in_use else ""
            size = cache.format_size(entry.bytes)
            print(f"{entry.key}  {entry.clip_name}  {entry.model_id}  {size}  {age}{used}", file=out)
        total = sum(entry.bytes for entry in entries)
        print(f"{len(entries)} entries, {cache.format_size(total)} in {root}", file=out)
        return 0
    before = cache.total_bytes(root)
    removed = cache.clear(root) if args.action == "clear" else cache.prune(root, max_bytes)
    freed = sum(entry.bytes for entry in removed)
    print(
        f"removed {len(removed)} entries ({cache.format_size(freed)}); "
        f"{cache.format_size(max(0, before - freed))} left in {root}",
        file=out,
    )
    return 0


def _age(seconds: float) -> str:
    """``3700`` -> ``"1 h ago"``."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"
