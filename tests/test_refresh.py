"""`make refresh`: committed notebooks, tracked figures and the README from one run.

The first three tests check the committed files themselves (they pass after
`make refresh`); the others check the refresh runner on tiny fake lessons in a temporary
folder and the README's regeneration on a fake README.
"""

import json
import re
from pathlib import Path

import nbformat
import pytest

from gan_utils.core import lessons, paths, report
from gan_utils.core import readme as generated
from gan_utils.core.plotting import read_run_id

TOLERANCE = 0.2  # README lesson times vs the notebooks' own clocks
LESSON_TIME = re.compile(
    r"<!-- refresh:lesson-time-(\d\d) -->(.*?)<!-- /refresh:lesson-time-\1 -->"
)


def _seconds(text: str) -> float | None:
    """``141 s (2.4 min)``, ``2.4 min`` or ``19 s`` in seconds; None for anything else."""
    match = re.match(r"\s*([\d.,]+)\s*(s|min)\b", text)
    if not match:
        return None
    value = float(match[1].replace(",", ""))
    return value * 60 if match[2] == "min" else value


# ------------------------------------------------------------------ the committed files


def test_tracked_figures_carry_the_run_id_of_their_committed_notebook():
    """figures/NN_*.png|gif|md were written by the run recorded in notebooks/NN_*.ipynb."""
    notebooks = {nb.name[:2]: nb for nb in lessons.lesson_notebooks()}
    expected = {k: (report.notebook_results(nb) or {}).get("run_id") for k, nb in notebooks.items()}
    figures = sorted(
        p
        for p in paths.committed_figures_dir().glob("[0-9][0-9]_*")
        if p.suffix in (".png", ".gif", ".md")
    )
    assert figures, "no tracked lesson figures"
    wrong = []
    for figure in figures:
        prefix = figure.name[:2]
        found = read_run_id(figure)
        if prefix not in notebooks:
            wrong.append(f"{figure.name}: no notebook {prefix}_*.ipynb")
        elif not expected[prefix]:
            wrong.append(f"{figure.name} ({found}): {notebooks[prefix].name} records no run id")
        elif found != expected[prefix]:
            wrong.append(
                f"{figure.name}: {found}, but {notebooks[prefix].name}: {expected[prefix]}"
            )
    assert not wrong, (
        f"{len(wrong)} of {len(figures)} tracked figures come from another run than their "
        "committed notebook: run `make refresh` (and delete figures no lesson writes):\n"
        + "\n".join(wrong[:25])
    )


def test_readme_lesson_times_match_the_committed_notebooks():
    """The README's lesson times (its table and the lessons table) within 20 % of the notebooks'."""
    readme = generated.README.read_text()
    recorded = {
        stem: payload["results"]["wall_time_s"]
        for stem, payload in lessons.committed_results().items()
        if isinstance(payload["results"].get("wall_time_s"), (int, float))
    }
    assert recorded, "no committed notebook records its wall time"
    section = re.search(
        r"<!-- refresh:lesson-times -->(.*?)<!-- /refresh:lesson-times -->", readme, re.DOTALL
    )
    assert section, "README has no lesson-times section"
    table = {}
    for line in section[1].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and re.match(r"\d\d_", cells[0]):
            table[cells[0]] = _seconds(cells[1])
    inline = {m[1]: _seconds(m[2]) for m in LESSON_TIME.finditer(readme)}
    assert set(table) == set(recorded), "the README's table lists other lessons: `make readme`"
    wrong = []
    for stem, wall in recorded.items():
        for where, shown in (
            ("lesson-times", table[stem]),
            ("lessons table", inline.get(stem[:2])),
        ):
            if where == "lessons table" and stem[:2] not in inline:
                continue  # the lessons table need not list every lesson
            # 20 % of the recorded time, plus half a second for the rounding to whole seconds
            if shown is None or abs(shown - wall) > TOLERANCE * wall + 0.5:
                wrong.append(f"{stem}: README {where} {shown} s, notebook {wall} s")
    assert not wrong, "README lesson times are stale: run `make readme`\n" + "\n".join(wrong)


def test_readme_generated_sections_are_up_to_date():
    """`make readme` would change nothing: key numbers and course table come from the notebooks."""
    readme = generated.README.read_text()
    sections = generated.readme_sections(lessons.committed_results())
    assert generated.replace_sections(readme, sections) == readme, "run `make readme`"


# ------------------------------------------------------------------ README regeneration


def _payload(name, results, run_id=None):
    payload = {
        "notebook": name,
        "finished": "2026-12-01T10:00:00",
        "machine": "x86_64, 1 torch threads",
    }
    if run_id:
        payload["run_id"] = run_id
    payload["results"] = results
    return payload


def _fake_executed_notebook(path: Path, payload: dict) -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("lesson.show_results(results)")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"text/markdown": "**Results**"}),
        nbformat.v4.new_output("display_data", data={"application/json": payload}),
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# fake"), cell]
    nbformat.write(nb, path)


FAKE_README = """# Course

| # | runtime |
| --- | --- |
| 01 | <!-- refresh:lesson-time-01 -->old<!-- /refresh:lesson-time-01 --> |
| 03 | <!-- refresh:lesson-time-03 -->old<!-- /refresh:lesson-time-03 --> (more when training) |

Hand-written text that must stay.

<!-- refresh:lesson-times -->
old table
<!-- /refresh:lesson-times -->

<!-- refresh:key-numbers -->
old numbers
<!-- /refresh:key-numbers -->

## The package

| module | what |
| --- | --- |
| `report` | unchanged |

<!-- refresh:course-table -->
old course table
<!-- /refresh:course-table -->

![every generator](figures/07_course_table.png)
"""


@pytest.fixture
def fake_course(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _fake_executed_notebook(
        folder / "01_gan_basics.ipynb",
        _payload(
            "01_gan_basics",
            {"w1_start": 1.94, "w1_end": 0.22, "w1_ratio": 8.8, "wall_time_s": 141.4},
            run_id="01_gan_basics@abc1234@2026-12-01T10:00:00Z",
        ),
    )
    # lesson 03 lacks n_test: its accuracy sentence must be left out, the IS one kept
    _fake_executed_notebook(
        folder / "03_mnist_classifier.ipynb",
        _payload(
            "03_mnist_classifier",
            {
                "test_accuracy": 0.979,
                "is_real_test_mean": 9.228,
                "is_real_test_n": 1000,
                "classifier_trained_now": False,
                "wall_time_s": 4.2,
            },
        ),
    )
    (folder / "07_evaluation.ipynb").write_text(
        json.dumps(nbformat.v4.new_notebook())
    )  # no results
    course = tmp_path / "07_course_table.md"
    course.write_text(
        "# Every generator of the course\n\n| lesson | IS |\n| --- | ---: |\n| 04_x | 3.38 |\n\n"
        "N = 1000 generated digits per draw\n"
    )
    readme = tmp_path / "README.md"
    readme.write_text(FAKE_README)
    return readme, folder, course


def test_readme_regeneration_replaces_only_the_marked_sections_and_is_idempotent(fake_course):
    readme, folder, course = fake_course
    assert lessons.regenerate_readme(readme, folder, course) is True
    text = readme.read_text()
    outside = re.sub(
        r"(<!-- refresh:([\w-]+) -->).*?(<!-- /refresh:\2 -->)", r"\1\3", text, flags=re.S
    )
    expected = re.sub(
        r"(<!-- refresh:([\w-]+) -->).*?(<!-- /refresh:\2 -->)", r"\1\3", FAKE_README, flags=re.S
    )
    assert outside == expected  # every character outside the markers is as it was
    assert "| 01 | <!-- refresh:lesson-time-01 -->2.4 min<!-- /refresh:lesson-time-01 --> |" in text
    assert "4 s<!-- /refresh:lesson-time-03 --> (more when training) |" in text
    assert "| 01_gan_basics | 141 s (2.4 min) |" in text
    assert "`01_gan_basics@abc1234@2026-12-01T10:00:00Z`" in text
    assert "classifier loaded from its checkpoint" in text
    assert "1-D W1 falls 8.8x (1.94 -> 0.22)" in text
    assert "IS of real test digits 9.23 at N = 1,000" in text
    assert "test accuracy" not in text  # n_test is missing: the sentence is left out
    assert "more gradient into G" not in text  # its key is missing too
    assert "| 04_x | 3.38 |" in text and "N = 1000 generated digits per draw." in text
    assert "old" not in text
    # a second run changes nothing
    assert lessons.regenerate_readme(readme, folder, course) is False
    assert readme.read_text() == text


def test_readme_without_markers_is_refused_and_a_missing_course_table_keeps_its_section(
    fake_course, tmp_path
):
    readme, folder, course = fake_course
    with pytest.raises(ValueError, match="refresh:key-numbers"):
        generated.replace_sections("no markers here", {})
    lessons.regenerate_readme(readme, folder, tmp_path / "missing.md")
    assert "old course table" in readme.read_text()


def test_key_numbers_are_stated_from_the_results_only():
    payloads = {
        "02_toy_mode_collapse": _payload(
            "02_toy_mode_collapse",
            {
                "dataset": "ring",
                "num_steps": 3000,
                "num_seeds": 3,
                "loss": "minimax",
                "collapse_n_critic": 5,
                "cure_n_critic": 1,
                "collapsed_seeds": 3,
                "covering_seeds": 2,
            },  # no remedy_beats_plain: its clause is left out
        ),
        "04_vanilla_gan": _payload("04_vanilla_gan", {"seed": 0}),  # nothing to state
    }
    text = generated.key_numbers(payloads)
    assert (
        "minimax with 5 critic steps collapses in 3 of 3 seeds, with 1 covers every mode in 2 of 3"
        in text
    )
    assert "remedies" not in text and "lesson 04" not in text
    assert "make refresh" in generated.key_numbers({})


def test_lesson05_live_budget_and_lesson06_verdicts_are_stated_from_the_results(tmp_path):
    r05 = {"epochs": 10, "steps_per_epoch": 62, "batch_size": 64, "eval_samples_n": 1000}
    sections = generated.readme_sections(
        {"05_dist_gan": _payload("05_dist_gan", r05)}, tmp_path / "no_course_table.md"
    )
    assert sections["live-budget-05"] == "620 steps at batch 64, N = 1,000"
    assert "live-budget-05" not in generated.readme_sections(
        {"05_dist_gan": _payload("05_dist_gan", {"epochs": 10})}, tmp_path / "none.md"
    )  # a budget the results do not hold is not stated
    r06 = {"ref_nugan_z10_seeds": 2}
    for z, (nu, va, outcome) in {
        1: (1.0, 1.007, "worse"),
        10: (6.38, 6.51, "no difference at this budget"),
    }.items():
        for key in ("is_mean", "fid_train", "classes_covered"):
            r06[f"ref_nugan_z{z}_{key}"], r06[f"ref_vanilla_z{z}_{key}"] = nu, va
            r06[f"ref_verdict_z{z}_{key}"] = outcome
            r06[f"ref_gap_z{z}_{key}"], r06[f"ref_twice_pooled_std_z{z}_{key}"] = 0.007, 0.003
    text = generated.key_numbers({"06_nu_gan_lanczos": _payload("06_nu_gan_lanczos", r06)})
    # every measure with its own verdict, and a called difference with its gap and threshold
    assert "latent 1: IS 1.00 vs 1.01 (worse, gap 0.007 > 0.003)" in text
    assert "FID vs train 1.0 vs 1.0 (worse, gap 0.01 > 0.00)" in text
    assert "latent 10: IS 6.38 vs 6.51 (no difference at this budget), FID vs train" in text


# ------------------------------------------------------------------ the refresh runner

LESSON_CELL = """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from gan_utils.core.plotting import figure_to_image, save_figure, save_gif
from gan_utils.core.report import start_lesson

lesson = start_lesson("{name}")
fig, ax = plt.subplots(figsize=(2, 2))
ax.plot([0, 1], [value, 2])
save_figure(fig, "{name}_plot", dpi=40)
save_gif([figure_to_image(fig, dpi=30)] * 2, "{name}_anim")
"""


def _lesson_notebook(path: Path, fail: bool = False) -> Path:
    name = path.stem
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    parameters = nbformat.v4.new_code_cell("value = 1")
    parameters.metadata["tags"] = ["parameters"]
    last = 'raise RuntimeError("lesson broke")' if fail else 'lesson.show_results({"value": value})'
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {name}"),
        parameters,
        nbformat.v4.new_code_cell(LESSON_CELL.format(name=name)),
        nbformat.v4.new_code_cell(last),
    ]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def fake_lessons(tmp_path, monkeypatch):
    root = tmp_path / "root"
    monkeypatch.setenv("GAN_UTILS_ROOT", str(root))
    monkeypatch.delenv("GAN_UTILS_REFRESH_FIGURES", raising=False)
    folder = tmp_path / "notebooks"
    folder.mkdir()
    return root.resolve(), folder


@pytest.mark.notebook
def test_refresh_executes_in_place_and_writes_the_tracked_figures_with_its_run_id(fake_lessons):
    root, folder = fake_lessons
    notebook = _lesson_notebook(folder / "01_fake.ipynb")
    lessons.check_kernel()
    payloads = lessons.refresh_lessons(lessons.lesson_notebooks(folder=folder), log=lambda _: None)
    run_id = payloads["01_fake"]["run_id"]
    assert report.parse_run_id(run_id)["lesson"] == "01_fake"
    executed = report.notebook_results(notebook)  # the notebook itself now holds the outputs
    assert executed["run_id"] == run_id and executed["results"]["value"] == 1
    assert executed["results"]["wall_time_s"] >= 0
    assert json.loads((root / "runs" / "01_fake" / "results.json").read_text())["run_id"] == run_id
    meta = nbformat.read(notebook, as_version=4).metadata["papermill"]
    assert meta["input_path"] == meta["output_path"] == "01_fake.ipynb"
    for name in ("01_fake_plot.png", "01_fake_anim.gif"):
        assert read_run_id(root / "figures" / name) == run_id
        assert not (root / "runs" / "figures" / name).exists()
    assert [p.name for p in folder.iterdir()] == ["01_fake.ipynb"]  # no temporary file left

    # `make run` on the same lesson: runs/ only, even with GAN_UTILS_REFRESH_FIGURES=1 set
    before = notebook.read_bytes()
    figure = (root / "figures" / "01_fake_plot.png").read_bytes()
    with lessons._tracked_figures(True):
        out = lessons.run_notebook(notebook, {"value": 2})
    assert out == root / "runs" / "01_fake" / "01_fake.ipynb"
    assert report.notebook_results(out)["results"]["value"] == 2
    assert read_run_id(root / "runs" / "figures" / "01_fake_plot.png") != run_id
    assert notebook.read_bytes() == before
    assert (root / "figures" / "01_fake_plot.png").read_bytes() == figure


@pytest.mark.notebook
def test_a_failing_lesson_stops_the_refresh_and_keeps_the_committed_notebook(fake_lessons):
    root, folder = fake_lessons
    notebook = _lesson_notebook(folder / "02_fake.ipynb", fail=True)
    later = _lesson_notebook(folder / "03_fake.ipynb")
    committed, later_committed = notebook.read_bytes(), later.read_bytes()
    (root / "figures").mkdir(parents=True)
    old_figure = root / "figures" / "02_fake_plot.png"
    old_figure.write_bytes(b"the committed figure")
    with pytest.raises(lessons.LessonFailed, match="02_fake.ipynb failed.*lesson broke"):
        lessons.refresh_lessons(lessons.lesson_notebooks(folder=folder), log=lambda _: None)
    assert notebook.read_bytes() == committed
    assert later.read_bytes() == later_committed  # the refresh stopped at the failure
    assert old_figure.read_bytes() == b"the committed figure"
    assert not (root / "figures" / "02_fake_anim.gif").exists()  # written, then removed
    failed = root / "runs" / "02_fake" / "02_fake.failed.ipynb"
    assert "lesson broke" in failed.read_text()
    assert sorted(p.name for p in folder.iterdir()) == ["02_fake.ipynb", "03_fake.ipynb"]


def test_refresh_refuses_a_moved_output_root(monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_UTILS_ROOT", str(tmp_path))
    with pytest.raises(SystemExit, match="GAN_UTILS_ROOT"):
        lessons.main(["--refresh", "01"])
    with pytest.raises(SystemExit):
        lessons.main(["--readme", "01"])  # --readme takes no prefixes
