"""An ipywidgets explorer for lesson 02: pick a variant and its knobs, watch it train.

``toy_explorer()`` returns a ``ToyExplorer``; display it in a notebook cell. Training runs
in a background thread so that the kernel keeps handling clicks: Stop sets an event
that a training callback checks after every generator step (``gan_utils.core.train``
callbacks that return True end the run). The live view is drawn with matplotlib's
object API (no pyplot), which is safe outside the main thread.
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
                self.progress,
                self.metrics,
            ]
        )
        self.widget = widgets.HBox([controls, self.image])
        self.run = None  # the last finished ToyRun
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- display ------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # ---- events -------------------------------------------------------------------------
    def _on_variant(self, change) -> None:
        self.n_critic.value = VARIANTS[change["new"]].n_critic

    def _on_train(self, _button=None) -> None:
        if self.is_training():
            return
        self._stop.clear()
        self.error = None
        self.train_button.disabled = True
        self.stop_button.disabled = False
        self._thread = threading.Thread(
            target=self._train, args=(self._run_settings(),), daemon=True
        )
        self._thread.start()

    def _on_stop(self, _button=None) -> None:
        self._stop.set()

    def is_training(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current training ends; True if it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.is_training()

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

    def _train(self, settings: ToySettings) -> None:
        variant, dataset, seed = self.variant.value, self.dataset.value, int(self.seed.value)
        mixture = get_toy_dataset(dataset)
        z = fixed_latents(settings.snapshot_samples, settings.latent_dim, seed=seed + 1)
        self.progress.max, self.progress.value = settings.num_steps, 0

        def refresh(state: TrainState) -> None:
            title = f"{variant}, step {state.step}"
            self._show(state.generator, z, mixture, title, state.step, settings.latent_dim)

        def stop_requested(state: TrainState) -> bool:
            return self._stop.is_set()

        try:
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
            self.metrics.value = (
                f"<b>{html.escape(variant)} on {dataset}, {status} at step {steps}</b><br>"
                f"{self._metrics_html(m)}<br>{run.steps_per_second:.0f} steps/s"
            )
        except Exception as error:  # shown in the widget; the thread must not die silently
            self.error = error
            self.metrics.value = f"<b>error:</b> {html.escape(repr(error))}"
        finally:
            self.train_button.disabled = False
            self.stop_button.disabled = True

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
