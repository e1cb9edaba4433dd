"""The recipes' typed schema (DESIGN.md convention 3), beside the YAML recipes it reads: dataclasses with defaults and validation, YAML
recipes that override only what differs (``base:`` names the recipe they start from), dotted ``--set``
overrides, and the fully resolved config saved beside every run's checkpoints."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import yaml

from ecgalign.data.errors import InputError, UnknownNameError
from ecgalign.data.spec import InputFields, InputSpec
from ecgalign.data.texts import TEXT_FIELDS

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true")


@dataclass
class DataConfig(InputFields):
    """The encoder input (``ecgalign.data.spec.InputFields``: fs, seconds, leads, normalize, bandpass; stored with
    the weights as the model's InputSpec) and the loader."""

    batch_size: int = 64
    unpaired_batch_size: int = 0  # signal-only records per step with --unpaired (0: same as batch_size)
    num_workers: int = 2
    text_field: str = "report"  # the text paired with each ECG: report | description (CQA) | label_names


@dataclass
class ModelConfig:
    encoder: str = "vit1d_small"
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    text_encoder: str | None = None  # None: the offline all-MiniLM-L6-v2
    text_trainable: bool = False
    text_max_length: int = 128
    proj_dim: int = 256
    decoder: dict[str, Any] = field(default_factory=dict)  # MaskedPatchDecoder overrides
    captioner: dict[str, Any] = field(default_factory=dict)  # CaptionDecoder overrides
    caption_vocab: str = "corpus"  # "corpus": the token ids of the training reports; "full": the tokenizer's


@dataclass
class ImageConfig:
    """The ``ecg-scan`` task: the image encoder, the printouts rendered online from each batch, the signal
    decoder, and the frozen teacher run whose ECG embeddings (and text encoder) guide it."""

    encoder: str = "vit2d_small"
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    height: int = 176  # the ecg-scan recipe's printout size (see its patch / resolution ablation)
    width: int = 224
    layout: str = "3x4+II"
    augment: str = "light"
    # With ``augment: wild``: the share of each batch drawn with wild page conventions and artefacts; the rest
    # is rendered on the recipe's own page with the ``light`` augmentation (clean pages keep the trace easy to
    # learn while the wild share teaches the other conventions). 1.0: the whole batch is wild.
    wild_share: float = 1.0
    # With ``augment: wild``: "random" draws each page's row pitch and position; "renderer" keeps the renderer's
    # default rows (the rest still wild), for models that read image files with ``--align-rows``.
    wild_rows: str = "random"
    # [low, high]: draw each training page as a US Letter page at a dpi drawn uniformly from this range and
    # resize it to (height, width) the way an image file is resized for the encoder (``fit_images``: letterbox,
    # antialiased bilinear), so training sees what a scanned or foreign printout becomes at the encoder's size
    # (thin, faint, blurred traces) instead of a page drawn at 224 px. Evaluation from signals draws at the
    # range's midpoint. None: pages are drawn at (height, width) directly.
    print_dpi: list[float] | None = None
    # True: every page reaches the encoder as its ink map (``render.ink_images``: black ink on white, grid and
    # paper colour dropped, shrunk by max pooling so thin traces stay dark), in training and for image files
    # alike, so printouts of other generators and scanners look like the training pages. Best with print_dpi.
    ink: bool = False
    grid: str = "red"
    latent_dim: int = 256  # reconstruction latent (the contrastive space takes the teacher's width)
    decoder: dict[str, Any] = field(default_factory=dict)  # QuerySignalDecoder overrides
    teacher: str | None = None  # run folder of an ecg-text model (``--teacher``)


@dataclass
class EchoConfig:
    """The ``eee`` task (seed 003, Sec. 3.3-3.4): the echo encoder, how many clips (= ECG tokens) a sequence
    holds, and the ECG side: ``strip`` (the strip burned into the echo screen, tokenised by an ``ecg_token_*``
    encoder, time-aligned with the clips) or ``paired`` (the study's 12-lead ECG from ``ecg_store``, any
    registered 12-lead encoder, aligned at study / patient level only)."""

    encoder: str = "echo_tiny"
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    clips: int = 4  # clips per sequence; with ``strip`` also the ECG tokens per sequence
    ecg_side: str = "strip"
    ecg_store: str | None = None  # ``paired``: the 12-lead store (None: <echo source>/ecg)


MINING = ("semi-hard", "margin", "none")  # eee negative mining: the paper, hard negatives too, all


@dataclass
class ObjectiveConfig:
    """Loss weights (0 switches a term off) and their settings. For ``ecg-scan``: ``contrastive`` is the
    image-text loss, ``reconstruction`` the signal MSE, ``gram`` the three-way volume loss and
    ``lead_consistency`` the soft Einthoven (``lead_alpha``) / Goldberger (``lead_beta``) term."""

    contrastive: float = 1.0
    reconstruction: float = 0.0
    ib: float = 0.0
    caption: float = 0.0
    gram: float = 0.0
    lead_consistency: float = 0.0
    lead_alpha: float = 1.0
    lead_beta: float = 1.0
    mask_ratio: float = 0.75
    temperature: float = 0.07
    learnable_temperature: bool = True
    label_smoothing: float = 0.0
    normalize_patches: bool = False
    token: float = 0.0  # eee: token-level dual-margin InfoNCE (study ids)
    sid: float = 0.0  # eee: sequence-level, study ids
    pid: float = 0.0  # eee: sequence-level, patient ids
    align: float = 0.0  # eee: BCE of the alignment head against shifted pairs
    shift_fraction: float = 0.25  # eee: share of each batch whose ECG is shifted (no contrastive term on them)
    margin_same: float = 0.1  # eee dual-margin mining, cosine units
    margin_other: float = 0.3
    mining: str = "semi-hard"  # eee: one of MINING (= losses.hierarchical.MINING, checked by a test)

    TERMS: ClassVar[tuple[str, ...]] = ("contrastive", "reconstruction", "ib", "caption", "gram", "lead_consistency",
                                        "token", "sid", "pid", "align")

    def weights(self) -> dict[str, float]:
        """Every loss term's weight (0 = off)."""
        return {term: float(getattr(self, term)) for term in self.TERMS}

    @property
    def needs_text(self) -> bool:
        return self.contrastive > 0 or self.ib > 0 or self.caption > 0 or self.gram > 0


@dataclass
class OptimConfig:
    lr: float = 3e-4
    weight_decay: float = 0.05
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    warmup_steps: int = 100
    max_steps: int = 10_000
    min_lr_ratio: float = 0.01
    grad_accum: int = 1
    grad_clip: float | None = 1.0


@dataclass
class TrainConfig:
    precision: str = "32-true"
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    seed: int = 0
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 10
    # a finished model folder, or a run's newest checkpoint, whose weights start this run (fine-tuning: the
    # same task and architecture, every weight loaded); a resumed run starts from its own checkpoint instead
    init_from: str | None = None


@dataclass
class Recipe:
    name: str = "custom"
    description: str = ""
    task: str = "ecg-text"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    echo: EchoConfig = field(default_factory=EchoConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``InputError`` naming the first setting that is out of range or of the wrong type."""
        try:
            self._validate()
        except TypeError as exc:  # e.g. a number compared with a string or None set through --set / YAML
            raise InputError(f"recipe {self.name!r}: a setting has the wrong type ({exc})") from exc

    def _validate(self) -> None:
        o, d, t, p = self.objective, self.data, self.train, self.optim
        if not isinstance(self.task, str) or not self.task:
            raise InputError(f"recipe {self.name!r}: task must name a registered task, got {self.task!r}")
        weights = o.weights()
        if any(w < 0 for w in weights.values()) or not any(w > 0 for w in weights.values()):
            raise InputError(f"recipe {self.name!r}: objective weights must be >= 0 with at least one > 0, got {weights}")
        if o.ib > 0 and o.contrastive == 0:
            raise InputError(f"recipe {self.name!r}: the IB penalty regularises the contrastive objective; set objective.contrastive > 0")
        if not o.temperature > 0:
            raise InputError(f"recipe {self.name!r}: objective.temperature must be > 0, got {o.temperature}")
        if not 0 <= o.label_smoothing < 1:
            raise InputError(f"recipe {self.name!r}: objective.label_smoothing must lie in [0, 1), got {o.label_smoothing}")
        if not 0 < o.mask_ratio < 1:
            raise InputError(f"recipe {self.name!r}: objective.mask_ratio must lie in (0, 1), got {o.mask_ratio}")
        if not 0 <= o.shift_fraction < 1 or o.margin_same < 0 or o.margin_other < 0:
            raise InputError(f"recipe {self.name!r}: objective.shift_fraction must lie in [0, 1) and the margins be "
                             f">= 0, got {o.shift_fraction}, {o.margin_same}, {o.margin_other}")
        if o.mining not in MINING:
            raise InputError(f"recipe {self.name!r}: objective.mining must be one of {', '.join(MINING)}, "
                             f"got {o.mining!r}")
        if self.echo.ecg_side not in ("strip", "paired") or int(self.echo.clips) < 1:
            raise InputError(f"recipe {self.name!r}: echo.ecg_side must be 'strip' or 'paired' and echo.clips >= 1, "
                             f"got {self.echo.ecg_side!r}, {self.echo.clips}")
        if d.text_field not in TEXT_FIELDS:
            raise InputError(f"recipe {self.name!r}: data.text_field must be one of {', '.join(TEXT_FIELDS)}, "
                             f"got {d.text_field!r}")
        if self.model.caption_vocab not in ("corpus", "full"):
            raise InputError(f"recipe {self.name!r}: model.caption_vocab must be 'corpus' or 'full', got {self.model.caption_vocab!r}")
        if t.precision not in PRECISIONS:
            raise InputError(f"recipe {self.name!r}: train.precision {t.precision!r} is not one of {PRECISIONS}")
        for name, value in (("data.batch_size", d.batch_size), ("optim.max_steps", p.max_steps),
                            ("optim.grad_accum", p.grad_accum), ("train.checkpoint_every", t.checkpoint_every),
                            ("train.log_every", t.log_every), ("train.keep_checkpoints", t.keep_checkpoints)):
            if int(value) < 1:
                raise InputError(f"recipe {self.name!r}: {name} must be >= 1, got {value}")
        if p.warmup_steps < 0 or p.lr <= 0:
            raise InputError(f"recipe {self.name!r}: optim.lr must be > 0 and optim.warmup_steps >= 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def input_spec(self) -> InputSpec:
        return InputSpec.of(self.data)


# ----------------------------------------------------------------------------------------------- merging
def _merge(target: Any, updates: dict[str, Any], where: str, path: str = "") -> None:
    """Apply nested ``updates`` to dataclass ``target`` in place; unknown keys raise with suggestions."""
    names = {f.name: f for f in fields(target)}
    for key, value in updates.items():
        if not isinstance(key, str):  # YAML "?" or "1: x" give a None or number key
            raise UnknownNameError(f"{where}: keys must be setting names, got {key!r} (valid: {', '.join(sorted(names))})")
        if key not in names:
            close = difflib.get_close_matches(key, names, n=2)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise UnknownNameError(f"{where}: unknown key {path + key!r}{hint} (valid: {', '.join(sorted(names))})")
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise InputError(f"{where}: {path}{key} must be a mapping, got {value!r}")
            _merge(current, value, where, f"{path}{key}.")
        elif isinstance(current, dict) and isinstance(value, dict):
            setattr(target, key, {**current, **value})  # free-form kwargs merge key by key
        else:
            setattr(target, key, _coerce(current, value, f"{where}: {path}{key}", str(names[key].type)))


def _coerce(current: Any, value: Any, where: str, annotation: str) -> Any:
    """Numbers written as YAML strings ("1e-3" is a string in YAML 1.1) become numbers; a type clash raises.
    ``annotation`` is the field's type as written (``"int | str"`` also takes text such as "auto")."""
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise InputError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(current, (int, float)) and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            if "str" in annotation:
                return value
            raise InputError(f"{where} must be a number, got {value!r}") from None
        value = int(number) if isinstance(current, int) and number.is_integer() else number
    if isinstance(current, (int, float)) and not isinstance(value, (int, float)) and value is not None:
        raise InputError(f"{where} must be a number, got {value!r}")
    if annotation.strip() == "str" and not isinstance(value, str):  # --set model.encoder={a: 1}
        raise InputError(f"{where} must be text, got {value!r}")
    if annotation.strip() == "int" and isinstance(value, float):  # --set data.batch_size=2.5
        if not value.is_integer():
            raise InputError(f"{where} must be a whole number, got {value!r}")
        return int(value)
    return value


def recipe_dir() -> Path:
    return Path(__file__).resolve().parent


def list_recipes() -> list[str]:
    return sorted(p.stem for p in recipe_dir().glob("*.yaml"))


def _recipe_file(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"}:
        if not path.is_file():
            raise FileNotFoundError(f"recipe file {path}: no such file")
        return path
    candidate = recipe_dir() / f"{name_or_path}.yaml"
    if not candidate.is_file():
        known = list_recipes()
        close = difflib.get_close_matches(name_or_path, known, n=2)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise UnknownNameError(f"unknown recipe {name_or_path!r}{hint} (known: {', '.join(known)})")
    return candidate


def _layers(name_or_path: str, seen: tuple[str, ...] = ()) -> list[tuple[Path, dict[str, Any]]]:
    path = _recipe_file(name_or_path)
    if str(path) in seen:
        raise InputError(f"recipe {path}: 'base' chain loops ({' -> '.join(seen)})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"recipe {path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"recipe {path}: expected a mapping at the top level")
    base = data.pop("base", None)
    below = _layers(base, (*seen, str(path))) if base else []
    return [*below, (path, data)]


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"optim.lr=1e-3"`` -> (["optim", "lr"], 0.001); the value is parsed as YAML."""
    if "=" not in text:
        raise InputError(f"override {text!r}: expected KEY.PATH=VALUE, e.g. optim.lr=1e-3")
    key, raw = text.split("=", 1)
    try:
        return key.strip().split("."), yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise InputError(f"override {text!r}: the value is not valid YAML ({str(exc).splitlines()[0]})") from exc


def load_recipe(name_or_path: str, overrides: dict[str, Any] | None = None, sets: list[str] | None = None) -> Recipe:
    """The recipe ``name_or_path`` (a packaged name or a YAML file) over the defaults, then ``overrides``
    (a nested dict) and ``sets`` (dotted ``KEY=VALUE`` strings), validated."""
    recipe = Recipe.__new__(Recipe)  # defaults without validating the empty intermediate
    for f in fields(Recipe):
        setattr(recipe, f.name, f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default)
    for path, data in _layers(name_or_path):
        _merge(recipe, data, f"recipe {path.name}")
    if overrides:
        _merge(recipe, overrides, "overrides")
    for text in sets or []:
        keys, value = parse_override(text)
        nested: dict[str, Any] = value
        for key in reversed(keys):
            nested = {key: nested}
        _merge(recipe, nested, f"--set {text}")  # messages read "--set optim.lr=x: optim.lr must be a number"
    recipe.validate()
    return recipe


def recipe_from_dict(data: dict[str, Any]) -> Recipe:
    """Rebuild a saved (resolved) recipe."""
    recipe = Recipe.__new__(Recipe)
    for f in fields(Recipe):
        setattr(recipe, f.name, f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default)
    _merge(recipe, data, "saved recipe")
    recipe.validate()
    return recipe
