"""Sections of ``modernvision demo`` beyond the core ones, one module per topic.

Each module has ``demo_section(out: Path) -> list[str]``: it runs in a few seconds on 2 CPU
cores (a short schedule, or small weights our own ``modernvision train`` produced, shipped in
:mod:`modernvision.assets` with the command that reproduces them in ``bench/``), writes its files
under ``out`` and returns the report lines. ``modernvision.cli.demo`` wires them in.
"""
