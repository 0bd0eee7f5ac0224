"""systole from Python: compile quantized models for a systolic-array
accelerator, run them on the cycle-accurate model with numpy arrays in and
out, and sweep hardware configurations.

A thin shell over the same library the ``systole`` command line calls
(docs/DESIGN.md §10 "Flow as a library"): the programs, outputs and reports
are the command line's, bit for bit, and errors carry its messages.

- ``compile(model, hw, *, batch=1, graph=True) -> Program``
- ``load(path_or_bytes) -> Program``; ``Program.save(path)``
- ``run(program_or_model, inputs, *, hw=None, backend="sim", check=False,
  energy_table=None, threads=None) -> (outputs, report)``; a batch's
  inferences spread over ``threads`` (default: every core; same results)
- ``sweep(model, hw, set, inputs, *, energy_table=None) -> list of dicts``
- ``compare(models, hw, inputs, *, labels=None, energy_table=None) -> dict``:
  a base model (a float one runs on the host's float reference) against its
  variants, as ``systole compare --json``.
- ``presets()``: the configurations ``hw=`` takes by name.

``hw`` is a TOML file's path, a preset's name (``"default"``, ``"tiny"``,
``"large"``, as the command line's ``--hw``) or a dict of the TOML's tables.
Errors raise ``SystoleError`` (``CheckError``, a subclass, when a check
fails). See docs/python.md.
"""

from ._systole import (
    CheckError,
    Program,
    SystoleError,
    compare,
    compile,
    load,
    presets,
    run,
    sweep,
)

__all__ = ["CheckError", "Program", "SystoleError", "compare", "compile", "load", "presets", "run", "sweep"]
