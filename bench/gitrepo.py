"""A large, realistic-shaped git repository made in seconds with `git fast-import`.

Main-line commits and squash merges, feature branches merged with merge commits, an
annotated release tag every 150 commits and a lightweight one every 400, two service
folders (a monorepo), several authors in several time zones. Deterministic: the same
arguments give the same repository, byte for byte.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

AUTHORS = [
    ("Alice Jones", "alice@example.com", "+0200"),
    ("Bob Smith", "bob@example.com", "-0500"),
    ("Chen Wei", "chen@example.com", "+0800"),
    ("Dana Ó Briain", "dana@example.com", "+0000"),
]
START = 1_600_000_000  # 2020-09-13


def _data(text: str) -> bytes:
    raw = text.encode("utf-8")
    return b"data %d\n" % len(raw) + raw + b"\n"


def fast_import_stream(commits: int) -> bytes:
    out: list[bytes] = []
    mark = 0
    main_tip = 0
    clock = START
    made = 0
    releases = 0

    def commit(ref: str, parent: int, merge: int, path: str, message: str, author: int) -> int:
        nonlocal mark, clock, made
        mark += 1
        made += 1
        clock += 600
        name, email, zone = AUTHORS[author % len(AUTHORS)]
        out.append(f"commit {ref}\nmark :{mark}\n".encode())
        out.append(f"author {name} <{email}> {clock - 300} {zone}\n".encode())
        out.append(f"committer {name} <{email}> {clock} {zone}\n".encode())
        out.append(_data(message))
        if parent:
            out.append(f"from :{parent}\n".encode())
        if merge:
            out.append(f"merge :{merge}\n".encode())
        out.append(f"M 100644 inline {path}\n".encode())
        out.append(_data(f"{path} at {mark}\n"))
        return mark

    while made < commits:
        n = made
        service = "services/api" if n % 3 else "services/web"
        if n % 25 == 24 and commits - made >= 4:
            base = main_tip
            tip = base
            for step in range(3):
                tip = commit(
                    "refs/heads/feature",
                    tip,
                    0,
                    f"{service}/feature_{n}_{step}.py",
                    f"Feature {n} step {step}",
                    n + step,
                )
            main_tip = commit(
                "refs/heads/main",
                main_tip,
                tip,
                f"{service}/merged_{n}.txt",
                f"Merge feature {n}",
                n,
            )
        else:
            main_tip = commit(
                "refs/heads/main",
                main_tip,
                0,
                f"{service}/module_{n % 97}.py",
                f"Change {n}: adjust {service.split('/')[1]} module {n % 97}",
                n,
            )
        if made // 150 > releases:
            releases = made // 150
            name, email, zone = AUTHORS[releases % len(AUTHORS)]
            out.append(f"tag v1.{releases}\nfrom :{main_tip}\n".encode())
            out.append(f"tagger {name} <{email}> {clock + 120} {zone}\n".encode())
            out.append(_data(f"Release 1.{releases}"))
            if releases % 3 == 0:
                out.append(f"reset refs/tags/deploy-{releases}\nfrom :{main_tip}\n\n".encode())
    out.append(b"done\n")
    return b"".join(out)


def make_repo(path: Path, commits: int) -> Path:
    """Create (or reuse) a repository with `commits` commits at `path`."""
    marker = path / ".poise-bench-commits"
    if marker.exists() and marker.read_text() == str(commits):
        return path
    if path.exists():
        subprocess.run(["rm", "-rf", str(path)], check=True)
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    subprocess.run(
        ["git", "-C", str(path), "fast-import", "--quiet", "--done"],
        input=fast_import_stream(commits),
        check=True,
    )
    subprocess.run(["git", "-C", str(path), "branch", "-q", "-D", "feature"], check=False)
    marker.write_text(str(commits))
    return path
