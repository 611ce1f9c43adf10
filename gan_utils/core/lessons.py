"""``make run`` and ``make refresh``: execute the lessons with papermill.

Usage::

    python -m gan_utils.core.lessons [PREFIX ...]            # make run
    python -m gan_utils.core.lessons --refresh [PREFIX ...]  # make refresh (maintainers)
    python -m gan_utils.core.lessons --readme                # README's generated parts only

``make run`` (a user's command) writes executed copies to
``<root>/runs/<notebook>/<notebook>.ipynb`` and figures to ``<root>/runs/figures``; each
lesson writes its own ``results.json`` there, and the summary table is built from those.

``make refresh`` re-executes every lesson (or those matching the prefixes) **in place**
at its defaults: each committed notebook is replaced by its executed copy, figures go to
the tracked ``figures/`` (``GAN_UTILS_REFRESH_FIGURES=1`` for that run only), then the
README's generated sections are rewritten from the committed notebooks. A lesson is
executed into a temporary file beside it and renamed into place only when it succeeds;
when it fails, the refresh stops, the committed notebook and the lesson's figures stay as
they were, and the failed copy is kept under ``runs/<notebook>/``.

Every file written here goes through ``gan_utils.core.atomic``: an executed notebook
(``make run``'s copy, a refreshed lesson) and the README appear whole or not at all, even
when the process is killed. ``make run`` executes into a temporary file too: a lesson that
fails (or is interrupted) leaves the previous executed copy in place and its own as
``runs/<notebook>/<notebook>.failed.ipynb``.

``--readme`` rewrites only the README's generated sections, offline, from the results each
committed notebook displays (``show_results``' JSON output, with ``wall_time_s`` and the
run id): the parts between ``<!-- refresh:NAME -->`` and ``<!-- /refresh:NAME -->``
(``lesson-times``, ``key-numbers``, ``course-table``, and inline ``lesson-time-NN``).
Everything outside the markers is left as it is, and a second call changes nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .atomic import atomic_path, atomic_write_text
from .paths import PROJECT_ROOT, figures_dir, output_root, runs_dir
from .readme import README, readme_sections, replace_sections
from .report import load_results, notebook_results, results_table

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
REFRESH_ENV = "GAN_UTILS_REFRESH_FIGURES"
KERNEL = "python3"


class LessonFailed(RuntimeError):
    """A lesson failed during ``make refresh``; its committed notebook was left unchanged."""


def lesson_notebooks(prefixes: list[str] | None = None, folder: Path | None = None) -> list[Path]:
    """The committed lessons in order, optionally only those whose name starts with a prefix."""
    folder = folder or NOTEBOOKS_DIR
    every = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not prefixes:
        return every
    notebooks = [nb for nb in every if any(nb.name.startswith(p) for p in prefixes)]
    if not notebooks:
        raise SystemExit(f"no lesson matches {prefixes}; lessons: {[nb.stem for nb in every]}")
    return notebooks


@contextlib.contextmanager
def _tracked_figures(enabled: bool) -> Iterator[None]:
    """Set (or remove) GAN_UTILS_REFRESH_FIGURES while a kernel starts and runs."""
    before = os.environ.get(REFRESH_ENV)
    if enabled:
        os.environ[REFRESH_ENV] = "1"
    else:
        os.environ.pop(REFRESH_ENV, None)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(REFRESH_ENV, None)
        else:
            os.environ[REFRESH_ENV] = before


def _execute(notebook: Path, out: Path, parameters: dict | None) -> None:
    import papermill as pm

    pm.execute_notebook(
        str(notebook),
        str(out),
        parameters=parameters or {},
        cwd=str(notebook.parent),
        kernel_name=KERNEL,
        progress_bar=False,
    )


def failed_copy(notebook: Path) -> Path:
    """``runs/<notebook>/<notebook>.failed.ipynb``: where a failed execution is kept."""
    return runs_dir(notebook.stem) / f"{notebook.stem}.failed.ipynb"


@contextlib.contextmanager
def _executed_copy(target: Path, notebook: Path) -> Iterator[Path]:
    """A temporary path published as ``target`` when the block succeeds; when it fails, the
    partly executed copy is moved to ``failed_copy(notebook)`` and ``target`` is unchanged."""
    with atomic_path(target) as temporary:
        try:
            yield temporary
        except BaseException:  # Ctrl-C too
            if temporary.is_file():
                shutil.move(str(temporary), failed_copy(notebook))
            raise


def run_notebook(notebook: Path, parameters: dict | None = None) -> Path:
    """Execute one lesson into ``runs/<notebook>/`` (kernel cwd: its folder); returns the path.

    Its figures go to ``runs/figures`` even when the caller has GAN_UTILS_REFRESH_FIGURES=1
    (e.g. lesson 07 training lessons 04-06 during ``make refresh``): only a refresh of the
    lesson itself writes the tracked figures. The executed copy is published atomically;
    a failed one is kept as ``failed_copy(notebook)`` and the previous copy stays.
    """
    out = runs_dir(notebook.stem) / notebook.name
    with _tracked_figures(False), _executed_copy(out, notebook) as temporary:
        _execute(notebook, temporary, parameters)
    failed_copy(notebook).unlink(missing_ok=True)  # an earlier failure, now fixed
    return out


def check_kernel() -> None:
    """Fail unless the ``python3`` kernel runs this interpreter (one environment for all)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel as exc:
        raise SystemExit(f"no Jupyter kernel {KERNEL!r}: run `make setup`") from exc
    program = spec.argv[0] if spec.argv else ""
    if program in ("python", f"python{sys.version_info[0]}"):
        return  # jupyter_client starts such a spec with the current interpreter
    if Path(program).resolve() != Path(sys.executable).resolve():
        raise SystemExit(
            f"the Jupyter kernel {KERNEL!r} ({spec.resource_dir}) runs {program}, not this "
            f"environment's {sys.executable}: run `make setup` (it installs the kernel into .venv)"
        )


def _error_line(exc: BaseException) -> str:
    """One line for an exception; papermill's says which cell raised what."""
    if getattr(exc, "ename", None):  # PapermillExecutionError
        return f"{exc.ename}: {exc.evalue} in cell [{exc.exec_count}]"
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _figure_files(folder: Path, prefix: str) -> list[Path]:
    return sorted(p for p in folder.glob(f"{prefix}_*") if p.is_file())


def refresh_notebook(notebook: Path) -> dict[str, Any]:
    """Execute one lesson in place at its defaults, figures to ``<root>/figures``.

    Returns the results payload the executed notebook displays. On failure the committed
    notebook and the lesson's figures (``<root>/figures/<NN>_*``) are left as they were,
    the failed copy is saved as ``runs/<notebook>/<notebook>.failed.ipynb``, and
    ``LessonFailed`` says so.
    """
    import nbformat

    notebook = Path(notebook).resolve()
    prefix = notebook.name[:2]
    with _tracked_figures(True), tempfile.TemporaryDirectory(prefix="gan_refresh_") as backup:
        folder = figures_dir()
        saved = {path: Path(backup) / path.name for path in _figure_files(folder, prefix)}
        for path, copy in saved.items():
            shutil.copy2(path, copy)
        started = time.time()
        try:
            with _executed_copy(notebook, notebook) as temporary:  # in place, atomically
                _execute(notebook, temporary, None)
                payload = notebook_results(temporary)
                if payload is None:
                    raise LessonFailed(f"{notebook.name} displayed no results (show_results)")
                executed = nbformat.read(temporary, as_version=4)
                meta = executed.metadata.get("papermill", {})
                meta["input_path"] = meta["output_path"] = notebook.name
                nbformat.write(executed, temporary)
        except BaseException as exc:  # Ctrl-C too: restore, keep the executed copy
            for path in _figure_files(folder, prefix):
                if path not in saved:
                    path.unlink()
            for path, copy in saved.items():
                with atomic_path(path) as temporary:
                    shutil.copy2(copy, temporary)
            if not isinstance(exc, Exception):
                raise
            raise LessonFailed(
                f"{notebook.name} failed ({_error_line(exc)}); the committed notebook and its "
                f"figures are unchanged; executed copy: {failed_copy(notebook)}"
            ) from exc
        stale = [p.name for p in _figure_files(folder, prefix) if p.stat().st_mtime < started - 2]
    if stale:
        print(f"  {folder}: not rewritten by this run (left over? delete them): {stale}")
    return payload


def refresh_lessons(
    notebooks: list[Path], log: Callable[[str], None] = print
) -> dict[str, dict[str, Any]]:
    """Refresh lessons in order; stops at the first failure (``LessonFailed``)."""
    payloads = {}
    for notebook in notebooks:
        log(f"refreshing {notebook.name} in place ...")
        t0 = time.perf_counter()
        payloads[notebook.stem] = refresh_notebook(notebook)
        wall = payloads[notebook.stem]["results"].get("wall_time_s")
        log(f"  {time.perf_counter() - t0:.0f} s (notebook's own clock: {wall} s)")
    return payloads


# ----------------------------------------------------------------------------- README


def committed_results(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """The results payload of every committed lesson that displayed one, in lesson order."""
    out = {}
    for notebook in lesson_notebooks(folder=folder):
        payload = notebook_results(notebook)
        if payload is not None:
            out[notebook.stem] = payload
    return out


def regenerate_readme(
    readme: Path | None = None,
    notebooks_dir: Path | None = None,
    course_table_md: Path | None = None,
) -> bool:
    """Rewrite the README's generated sections from the committed notebooks; True if changed."""
    readme = readme or README
    payloads = committed_results(notebooks_dir)
    sections = readme_sections(payloads, course_table_md)
    if "course-table" not in sections:
        print("course table not found: the README keeps its course-table section")
    old = readme.read_text()
    new = replace_sections(old, sections)
    if new != old:
        atomic_write_text(readme, new)
    return new != old


def _refresh(prefixes: list[str]) -> int:
    if output_root() != PROJECT_ROOT.resolve():
        raise SystemExit(
            f"GAN_UTILS_ROOT moves the output root to {output_root()}: `make refresh` writes "
            "the tracked figures/ of the project; unset GAN_UTILS_ROOT"
        )
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    check_kernel()
    notebooks = lesson_notebooks(prefixes)
    try:
        payloads = refresh_lessons(notebooks)
    except LessonFailed as exc:
        print(f"\nREFRESH STOPPED: {exc}", file=sys.stderr)
        print("The README was not regenerated; fix the lesson and run `make refresh` again.")
        return 1
    print()
    print(results_table({k: p["results"] for k, p in payloads.items()}))
    try:
        changed = regenerate_readme()
    except ValueError as exc:
        print(f"\nThe lessons were refreshed, but not the README: {exc}", file=sys.stderr)
        return 1
    print(f"\nREADME.md: generated sections {'rewritten' if changed else 'unchanged'}.")
    print("Commit notebooks/, figures/ and README.md together.")
    return 0


def _run(prefixes: list[str]) -> int:
    timings = {}
    failed = []
    for notebook in lesson_notebooks(prefixes):
        print(f"running {notebook.name} ...", flush=True)
        t0 = time.perf_counter()
        try:
            run_notebook(notebook)
        except Exception as exc:  # report and go on with the other lessons
            failed.append(notebook.name)
            print(f"  FAILED: {_error_line(exc)}")
            if failed_copy(notebook).is_file():
                print(f"  executed copy: {failed_copy(notebook)}")
        timings[notebook.stem] = time.perf_counter() - t0
        print(f"  {timings[notebook.stem]:.0f} s", flush=True)
    print()
    print(results_table(load_results()))
    print()
    print(
        "wall time per lesson (papermill): "
        + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    )
    if failed:
        print(f"failed lessons: {failed}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="lesson number prefixes, e.g. 01 02")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--refresh",
        action="store_true",
        help="execute the lessons in place, figures to figures/, then regenerate the README",
    )
    mode.add_argument(
        "--readme",
        action="store_true",
        help="only regenerate the README's sections from the committed notebooks",
    )
    args = parser.parse_args(argv)
    if args.readme:
        if args.prefixes:
            parser.error("--readme reads every committed notebook; it takes no prefixes")
        try:
            changed = regenerate_readme()
        except ValueError as exc:
            raise SystemExit(str(exc)) from exc
        print(f"README.md: generated sections {'rewritten' if changed else 'unchanged'}.")
        return 0
    if args.refresh:
        return _refresh(args.prefixes)
    return _run(args.prefixes)


if __name__ == "__main__":
    sys.exit(main())
