"""An ipywidgets explorer for lesson 02: pick a variant and its knobs, watch it train.

``toy_explorer()`` returns a ``ToyExplorer``; display it in a notebook cell. Training runs
in a background thread so that the kernel keeps handling clicks: Stop sets an event
that a training callback checks after every generator step (``gan_utils.core.train``
callbacks that return True end the run). The live view is drawn with matplotlib's
object API (no pyplot), which is safe outside the main thread.

At most one training runs at a time: a Train click while one runs (or is stopping) is
ignored, and the status line says so; an error inside training is shown in the status
line and the metrics as ``ExceptionType: message``, and Train is usable again.
"""

from __future__ import annotations

import dataclasses
import html
import io
import threading

import ipywidgets as widgets
from matplotlib.figure import Figure

from ..core.checks import check_choice, check_int
from ..core.latent import fixed_latents, generate
from ..core.loop import every
from ..core.plotting import scatter_samples
from ..core.train import TrainState
from ..core.variants import VARIANTS
from .coverage import evaluate_coverage
from .mixtures import TOY_DATASETS, get_toy_dataset
from .plots import axis_limit, real_points
from .runs import ToySettings, train_toy

LATENT_SIZES = (1, 2, 4, 8, 16, 32)
THREAD_NAME = "toy-explorer-train"  # the name of the training thread


class ToyExplorer:
    """Widgets (variant, dataset, lr, n_critic, latent size, steps, seed), Train and Stop
    buttons, a progress bar, a live scatter plot and the metrics of the current generator.

    Args:
        settings: everything else of the run (sizes, batch, optimiser); the widgets set
            ``num_steps``, ``lr``, ``n_critic`` and ``latent_dim``.
        refresh_every: generator steps between redraws of the plot and the metrics.
        variant, dataset: the first choice of the drop-downs.
        n_critic: the first value of the n_critic slider (None: the variant's own); the
            slider follows the variant's own value when another variant is picked.

    Train and Stop: at most one training thread (named ``THREAD_NAME``) runs at any time.
    A Train click while a training runs, or is still stopping, is *ignored* (not queued):
    the status line says "already training … ignored", and Train must be clicked again
    once the run has ended. Stop asks the running training to end after its current
    generator step; the next Train starts a fresh run only after that thread has finished.
    The Train button is disabled while a training runs, so in the browser the ignored
    click only happens from code or from clicks that race the button's update.

    Errors: an exception raised while preparing or running a training (a bad setting, a
    failing plot, ...) is kept in ``error`` and shown as ``ExceptionType: message`` in the
    status line and the metrics; Train is enabled again and Stop disabled. A run whose loss
    becomes NaN/inf is not an error: it ends and is reported as diverged.
    """

    def __init__(
        self,
        settings: ToySettings | None = None,
        refresh_every: int = 100,
        variant: str = "minimax",
        dataset: str = "ring",
        n_critic: int | None = None,
    ):
        self.refresh_every = check_int("refresh_every", refresh_every, minimum=1)
        self.settings = settings or ToySettings()
        self.settings.validate()
        check_choice("variant", variant, list(VARIANTS))
        check_choice("dataset", dataset, list(TOY_DATASETS))
        n_critic = VARIANTS[variant].n_critic if n_critic is None else n_critic
        check_int("n_critic", n_critic, minimum=1, maximum=10)
        style = {"description_width": "90px"}
        self.variant = widgets.Dropdown(
            options=list(VARIANTS), value=variant, description="variant", style=style
        )
        self.dataset = widgets.Dropdown(
            options=list(TOY_DATASETS), value=dataset, description="dataset", style=style
        )
        self.lr = widgets.FloatLogSlider(
            value=self.settings.lr, base=10, min=-5, max=-2, step=0.25, description="learning rate",
            readout_format=".1e", style=style,
        )  # fmt: skip
        self.n_critic = widgets.IntSlider(
            value=n_critic, min=1, max=10, description="n_critic", style=style
        )
        self.latent_size = widgets.Dropdown(
            options=list(LATENT_SIZES), value=self.settings.latent_dim
            if self.settings.latent_dim in LATENT_SIZES else 2,
            description="latent size", style=style,
        )  # fmt: skip
        self.steps = widgets.IntSlider(
            value=self.settings.num_steps, min=10, max=20_000, step=10, description="steps",
            style=style,
        )  # fmt: skip
        self.seed = widgets.BoundedIntText(
            value=0, min=0, max=10**6, description="seed", style=style
        )
        self.train_button = widgets.Button(description="Train", button_style="primary")
        self.stop_button = widgets.Button(description="Stop", button_style="warning", disabled=True)
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="step 0")
        self.image = widgets.Image(format="png", width=360, height=360)
        self.status = widgets.HTML(value="<i>ready</i>")
        self.metrics = widgets.HTML(value="<i>Press Train.</i>")
        self.train_button.on_click(self._on_train)
        self.stop_button.on_click(self._on_stop)
        self.variant.observe(self._on_variant, names="value")
        controls = widgets.VBox(
            [
                self.variant,
                self.dataset,
                self.lr,
                self.n_critic,
                self.latent_size,
                self.steps,
                self.seed,
                widgets.HBox([self.train_button, self.stop_button]),
                self.status,  # before the metrics: the metrics stay the last HTML widget
                self.progress,
                self.metrics,
            ]
        )
        self.widget = widgets.HBox([controls, self.image])
        self.run = None  # the last finished ToyRun
        self.error: BaseException | None = None
        self.ignored_clicks = 0  # Train clicks ignored because a training was running
        self._stop = threading.Event()
        self._lock = threading.Lock()  # guards _busy, _thread and the buttons' states
        self._busy = False  # a training has been started and has not yet released the UI
        self._thread: threading.Thread | None = None

    # ---- display ------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # ---- events -------------------------------------------------------------------------
    def _on_variant(self, change) -> None:
        self.n_critic.value = VARIANTS[change["new"]].n_critic

    def _on_train(self, _button=None) -> None:
        with self._lock:
            if self._busy:
                self.ignored_clicks += 1
                stopping = " (stopping)" if self._stop.is_set() else ""
                self._set_status(
                    f"already training{stopping}: this Train click was ignored; "
                    "press Train again once the run has ended"
                )
                return
            if self._thread is not None:
                # the previous thread released the UI as its very last action: it is only
                # returning now, so this join is immediate
                self._thread.join()
                self._thread = None
            self._stop.clear()
            self.error = None
            try:
                # the choices are read here, at the click, not later in the thread
                job = (
                    self._run_settings(),
                    self.variant.value,
                    self.dataset.value,
                    int(self.seed.value),
                )
                thread = threading.Thread(
                    target=self._train, args=job, name=THREAD_NAME, daemon=True
                )
                self._busy = True
                self.train_button.disabled = True
                self.stop_button.disabled = False
                self._set_status("training… (Stop ends it; Train is ignored until it ends)")
                thread.start()
                self._thread = thread
            except Exception as error:  # a bad setting: no thread runs, Train stays usable
                self._busy = False
                self._show_error(error)
                self.train_button.disabled = False
                self.stop_button.disabled = True

    def _on_stop(self, _button=None) -> None:
        with self._lock:
            if not self._busy:
                return
            self._stop.set()
            self.stop_button.disabled = True
            self._set_status("stopping… (Train is ignored until the run has ended)")

    def is_training(self) -> bool:
        thread = self._thread
        return self._busy or (thread is not None and thread.is_alive())

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current training ends; True if it has ended."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.is_training()

    def _set_status(self, text: str) -> None:
        self.status.value = f"<i>{html.escape(text)}</i>"

    def _show_error(self, error: BaseException) -> None:
        self.error = error
        text = html.escape(f"{type(error).__name__}: {error}")
        self.status.value = f"<b>error:</b> {text}"
        self.metrics.value = f"<b>error:</b> {text}"

    # ---- training -----------------------------------------------------------------------
    def _run_settings(self) -> ToySettings:
        return dataclasses.replace(
            self.settings,
            num_steps=int(self.steps.value),
            lr=float(self.lr.value),
            n_critic=int(self.n_critic.value),
            latent_dim=int(self.latent_size.value),
            num_snapshots=0,
        )

    def _train(self, settings: ToySettings, variant: str, dataset: str, seed: int) -> None:
        outcome = None  # the status line at the end; None after an error
        try:
            mixture = get_toy_dataset(dataset)
            z = fixed_latents(settings.snapshot_samples, settings.latent_dim, seed=seed + 1)
            self.progress.max, self.progress.value = settings.num_steps, 0

            def refresh(state: TrainState) -> None:
                title = f"{variant}, step {state.step}"
                self._show(state.generator, z, mixture, title, state.step, settings.latent_dim)

            def stop_requested(state: TrainState) -> bool:
                return self._stop.is_set()

            run = train_toy(
                variant,
                dataset,
                seed,
                settings,
                callbacks=[every(1, stop_requested), every(self.refresh_every, refresh)],
            )
            self.run = run
            steps = run.history.extras.get("steps", 0)
            title = f"{variant}, step {steps}"
            self._show(run.generator, z, mixture, title, steps, settings.latent_dim)
            m = run.metrics
            status = "stopped" if steps < settings.num_steps else "finished"
            status += " (diverged: a loss became NaN/inf)" if run.diverged else ""
            status += f" at step {steps}"
            self.metrics.value = (
                f"<b>{html.escape(variant)} on {dataset}, {status}</b><br>"
                f"{self._metrics_html(m)}<br>{run.steps_per_second:.0f} steps/s"
            )
            outcome = f"{variant} on {dataset}: {status}"
        except Exception as error:  # shown in the widget; the thread must not die silently
            self._show_error(error)
        finally:
            with self._lock:  # the last action of the thread: release the UI
                if outcome is not None:
                    self._set_status(outcome)
                self.train_button.disabled = False
                self.stop_button.disabled = True
                self._busy = False

    @staticmethod
    def _metrics_html(m) -> str:
        return (
            f"modes covered: {m.modes_covered}/{m.num_modes} (hit: {m.modes_hit})<br>"
            f"high quality: {m.high_quality_percent:.1f} %<br>"
            f"KL(HQ ‖ uniform): {m.kl_to_uniform:.3f} nats"
        )

    def _show(self, generator, z, mixture, title: str, step: int, latent_dim: int) -> None:
        samples = generate(generator, z, batch_size=None).numpy()
        fig = Figure(figsize=(4, 4))
        ax = fig.add_subplot()
        finite = samples[(samples == samples).all(1)]  # drop NaN rows of a diverged G
        scatter_samples(ax, finite, real_points(mixture), title=title, limit=axis_limit(mixture))
        ax.set_xlabel("x1 (data units)")
        ax.set_ylabel("x2 (data units)")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=72)
        self.image.value = buffer.getvalue()
        self.progress.value = min(step, self.progress.max)
        self.progress.description = f"step {step}"
        if step < self.progress.max:
            m = evaluate_coverage(generator, mixture, latent_dim)
            self.metrics.value = f"<b>training…</b><br>{self._metrics_html(m)}"


def toy_explorer(
    settings: ToySettings | None = None,
    refresh_every: int = 100,
    variant: str = "minimax",
    dataset: str = "ring",
    n_critic: int | None = None,
) -> ToyExplorer:
    """Build the lesson-02 explorer (see ``ToyExplorer``); display the returned object in
    a notebook cell."""
    return ToyExplorer(settings, refresh_every, variant, dataset, n_critic)
