r"""The ten GAN loss variants of the course: one registry, ``VARIANTS``, of ``Variant`` entries.

Every variant is a name in ``VARIANTS`` and differs from the others only in the
``TrainConfig`` fields it sets and in the critic's spectral normalisation:

====================  ==============  ========  ==========================================
name                  loss            n_critic  Lipschitz constraint / generator update
====================  ==============  ========  ==========================================
minimax               minimax         1         -
non_saturating        non_saturating  1         -
non_saturating_topk   non_saturating  1         top-k generator update
hinge                 hinge           1         -
least_squares         least_squares   1         -
wasserstein           wasserstein     5         none (shows why one is needed)
wasserstein_clip      wasserstein     5         weights clipped to [-0.01, 0.01]
wasserstein_sn        wasserstein     5         spectral norm on every critic layer
wgan_gp               wasserstein     5         gradient penalty, lambda = 10
wgan_gp_topk          wasserstein     5         gradient penalty + top-k generator update
====================  ==============  ========  ==========================================

The remedies for mode collapse (``gan_utils.core.remedies``), each on the minimax loss so
that it differs from ``minimax`` in the remedy alone:

====================  ==========================================================
name                  remedy
====================  ==========================================================
pacgan2/3/4           PacGAN: the critic judges packs of m = 2, 3, 4 samples
minibatch_std         the batch's feature spread as one more critic feature
unrolled5, unrolled10 G trained against the critic after k = 5, 10 look-ahead steps
====================  ==========================================================

Top-k (Sinha et al. 2020): the generator loss uses only the k fakes with the highest
critic score, :math:`k = \max(\gamma^{e} B, \nu B)` at epoch e (gamma 0.99, nu 0.5,
an epoch = ``steps_per_epoch`` generator steps; the Mode_Collapse repository's 10,000
samples at batch 500 make 20). The repository's loss names (standard, non-saturating,
least-squares, wasserstein-gp) are accepted as aliases.

The registry is shared by the toy lessons (``gan_utils.toy.runs``, lesson 02) and the
image lessons (``gan_utils.images.recipe``, lesson 04).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .checks import check_bool, check_choice, check_int, check_number
from .losses import LOSSES
from .train import TrainConfig

WASSERSTEIN_N_CRITIC = 5  # critic steps per generator step for the Wasserstein family
CLIP_VALUE = 0.01  # WGAN weight clipping (Arjovsky et al. 2017; the repository)
GP_WEIGHT = 10.0  # WGAN-GP's lambda (Gulrajani et al. 2017; the repository used 2)


@dataclass(frozen=True)
class PaperOptimizer:
    """The optimiser a variant's paper trained with (``ToySettings.paper_optimizers``,
    lesson 04's Wasserstein rows)."""

    optimizer: str  # "adam" or "rmsprop"
    lr: float
    betas: tuple[float, float] = (0.5, 0.999)  # Adam's (unused by RMSprop)
    source: str = ""  # where the setting comes from


# The Wasserstein family with its papers' optimisers: WGAN (Arjovsky et al. 2017,
# Algorithm 1: RMSprop, lr 5e-5, n_critic 5); WGAN-GP (Gulrajani et al. 2017, Algorithm 1:
# Adam lr 1e-4, beta1 0, beta2 0.9, n_critic 5); SN-GAN (Miyato et al. 2018, setting A of
# its Table 1: Adam lr 1e-4, beta1 0.5, beta2 0.9, n_dis 5).
WGAN_RMSPROP = PaperOptimizer("rmsprop", 5e-5, source="Arjovsky et al. 2017, Algorithm 1")
WGAN_GP_ADAM = PaperOptimizer("adam", 1e-4, (0.0, 0.9), "Gulrajani et al. 2017, Algorithm 1")
SN_GAN_ADAM = PaperOptimizer("adam", 1e-4, (0.5, 0.9), "Miyato et al. 2018, Table 1, setting A")


@dataclass(frozen=True)
class Variant:
    """A GAN variant: a loss of ``gan_utils.core.losses.LOSSES`` plus training options."""

    name: str  # the key in VARIANTS
    loss: str  # a key of gan_utils.core.losses.LOSSES
    description: str  # one line for tables and the widget
    n_critic: int = 1  # critic steps per generator step
    clip_value: float | None = None  # clip the critic's weights to [-c, c]
    gp_weight: float = 0.0  # lambda of the gradient penalty
    spectral_norm: bool = False  # spectral normalisation of every critic layer
    topk: bool = False  # top-k generator update
    pack: int = 1  # PacGAN: samples per pack the critic judges (1: plain)
    minibatch_std: bool = False  # minibatch standard deviation feature in the critic
    unroll_steps: int = 0  # unrolled GAN: critic look-ahead steps in G's loss (0: plain)
    paper_optimizer: PaperOptimizer | None = None  # its paper's optimiser, where one is fixed

    def __post_init__(self):
        check_choice("loss", self.loss, LOSSES)
        check_int("n_critic", self.n_critic, minimum=1)
        if self.clip_value is not None:
            check_number("clip_value", self.clip_value, minimum=0, min_open=True)
        check_number("gp_weight", self.gp_weight, minimum=0)
        check_bool("spectral_norm", self.spectral_norm)
        check_bool("topk", self.topk)
        check_int("pack", self.pack, minimum=1)
        check_bool("minibatch_std", self.minibatch_std)
        check_int("unroll_steps", self.unroll_steps, minimum=0)
        if self.unroll_steps and self.spectral_norm:
            raise ValueError(
                f"unroll_steps={self.unroll_steps} cannot be combined with spectral_norm=True:"
                " spectral normalisation updates its power-iteration vectors on every critic"
                " call, so the look-ahead steps would change the real critic; use"
                " unroll_steps=0 or spectral_norm=False"
            )
        self.train_config().validate()  # unsupported combinations fail here, by name

    @property
    def is_remedy(self) -> bool:
        """True when PacGAN, the minibatch-std feature or unrolling is switched on."""
        return self.pack > 1 or self.minibatch_std or self.unroll_steps > 0

    def train_config(self, **changes) -> TrainConfig:
        """The variant's ``TrainConfig``; ``changes`` set any other field (or override)."""
        fields = {
            "loss": self.loss,
            "n_critic": self.n_critic,
            "clip_value": self.clip_value,
            "gp_weight": self.gp_weight,
            "topk": self.topk,
            "pack": self.pack,
            "unroll_steps": self.unroll_steps,
        }
        return TrainConfig(**{**fields, **changes})

    def critic_options(self) -> dict:
        """Keyword arguments for ``gan_utils.core.mlp.mlp_critic``."""
        return {"spectral_norm": self.spectral_norm, "minibatch_std": self.minibatch_std}


_W = WASSERSTEIN_N_CRITIC
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("minimax", "minimax", "standard GAN: G minimises log(1 - D(G(z)))"),
        Variant("non_saturating", "non_saturating", "G maximises log D(G(z))"),
        Variant(
            "non_saturating_topk",
            "non_saturating",
            "non-saturating, G learns from its top-k fakes only",
            topk=True,
        ),
        Variant("hinge", "hinge", "hinge critic (margin 1), G raises D(G(z))"),
        Variant("least_squares", "least_squares", "LSGAN (a=0, b=1, c=1)"),
        Variant(
            "wasserstein",
            "wasserstein",
            "WGAN without a Lipschitz constraint",
            n_critic=_W,
            paper_optimizer=WGAN_RMSPROP,
        ),
        Variant(
            "wasserstein_clip",
            "wasserstein",
            f"WGAN, critic weights clipped to [-{CLIP_VALUE}, {CLIP_VALUE}]",
            n_critic=_W,
            clip_value=CLIP_VALUE,
            paper_optimizer=WGAN_RMSPROP,
        ),
        Variant(
            "wasserstein_sn",
            "wasserstein",
            "WGAN, spectral norm on every critic layer",
            n_critic=_W,
            spectral_norm=True,
            paper_optimizer=SN_GAN_ADAM,
        ),
        Variant(
            "wgan_gp",
            "wasserstein",
            f"WGAN-GP, gradient penalty lambda = {GP_WEIGHT:g}",
            n_critic=_W,
            gp_weight=GP_WEIGHT,
            paper_optimizer=WGAN_GP_ADAM,
        ),
        Variant(
            "wgan_gp_topk",
            "wasserstein",
            "WGAN-GP with the top-k generator update",
            n_critic=_W,
            gp_weight=GP_WEIGHT,
            topk=True,
            paper_optimizer=WGAN_GP_ADAM,
        ),
        *(
            Variant(f"pacgan{m}", "minimax", f"PacGAN: the critic judges packs of {m}", pack=m)
            for m in (2, 3, 4)
        ),
        Variant(
            "minibatch_std",
            "minimax",
            "minibatch std: the batch's feature spread is a critic feature",
            minibatch_std=True,
        ),
        *(
            Variant(
                f"unrolled{k}",
                "minimax",
                f"unrolled GAN: G against the critic {k} steps ahead",
                unroll_steps=k,
            )
            for k in (5, 10)
        ),
    )
}
REMEDIES = tuple(name for name, v in VARIANTS.items() if v.is_remedy)

# The Mode_Collapse repository's --loss names.
ALIASES: dict[str, str] = {
    "standard": "minimax",
    "non-saturating": "non_saturating",
    "least-squares": "least_squares",
    "wasserstein-gp": "wgan_gp",
}


def get_variant(name: str | Variant) -> Variant:
    """A variant by name (or alias); an unknown name raises a ValueError listing the choices
    (a value that is neither a string nor a ``Variant``: a TypeError)."""
    if isinstance(name, Variant):
        return name
    name = check_choice("variant", name, [*VARIANTS, *ALIASES])
    return VARIANTS[ALIASES.get(name, name)]


def customise(
    variant: str | Variant,
    spectral_norm: bool = False,
    clip_value: float | None = None,
    topk: bool = False,
    n_critic: int | None = None,
    pack: int | None = None,
    minibatch_std: bool = False,
    unroll_steps: int | None = None,
) -> Variant:
    """A variant with options switched on (the CLI's --spectral_norm, --clip_weights, --topk,
    --n_critic, --pack, --minibatch_std, --unroll); pack=1 and unroll_steps=0 mean off.

    The result takes the name of the registered variant it equals (e.g. wasserstein +
    spectral_norm is ``wasserstein_sn``, minimax + pack 2 is ``pacgan2``), else
    ``"<name>+sn+clip<c>+topk+ncritic<n>+pack<m>+mbstd+unroll<k>"``. A combination the
    remedy does not support raises a ValueError naming both options.
    """
    base = get_variant(variant)
    changes = {}
    if check_bool("spectral_norm", spectral_norm):
        changes["spectral_norm"] = True
    if clip_value is not None and check_number("clip_value", clip_value, minimum=0):
        changes["clip_value"] = float(clip_value)
    if check_bool("topk", topk):
        changes["topk"] = True
    if n_critic is not None:
        changes["n_critic"] = check_int("n_critic", n_critic, minimum=1)
    if pack is not None:
        changes["pack"] = check_int("pack", pack, minimum=1)
    if check_bool("minibatch_std", minibatch_std):
        changes["minibatch_std"] = True
    if unroll_steps is not None:
        changes["unroll_steps"] = check_int("unroll_steps", unroll_steps, minimum=0)
    changes = {k: v for k, v in changes.items() if getattr(base, k) != v}
    if not changes:
        return base
    custom = dataclasses.replace(base, **changes)
    for known in VARIANTS.values():
        same_labels = {
            "name": known.name,
            "description": known.description,
            "paper_optimizer": known.paper_optimizer,
        }
        if dataclasses.replace(custom, **same_labels) == known:
            return known
    tags = [base.name]
    tags += ["sn"] if custom.spectral_norm and not base.spectral_norm else []
    tags += [f"clip{custom.clip_value:g}"] if custom.clip_value != base.clip_value else []
    tags += ["topk"] if custom.topk and not base.topk else []
    tags += [f"ncritic{custom.n_critic}"] if custom.n_critic != base.n_critic else []
    tags += [f"pack{custom.pack}"] if custom.pack != base.pack else []
    tags += ["mbstd"] if custom.minibatch_std and not base.minibatch_std else []
    tags += [f"unroll{custom.unroll_steps}"] if custom.unroll_steps != base.unroll_steps else []
    return dataclasses.replace(
        custom, name="+".join(tags), description=f"{base.description} ({', '.join(tags[1:])})"
    )
