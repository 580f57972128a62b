"""Joint training of quantizer and task network on the simulated sensor (Algorithm 1 of
"Task-Guided Quantization Strategies"), export to the design file, evaluation through the golden
model.

:func:`train` is the one entry point (the command line and the demo call it)::

    from learn.train import train
    metrics = train("digits", "runs/x")        # or a dict / a YAML path; None = default config

Every batch: images × photons at white → sensor frames with fresh noise → quantizer → decode →
task network → cross-entropy; Adam with one learning rate for the thresholds and one for the rest.
The last ``freeze_epochs`` epochs run with the thresholds snapped to their integer export, so the
network finishes training on exactly the codes the hardware produces. Test frames are captured
once, with a fixed seed; the reported ``test_accuracy`` is the accuracy of the golden model
(``adcforge.golden``) run on the exported design file.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from adcforge.design import dump_design, save_design
from adcforge.errors import AdcforgeError, ConfigError

from .config import load_config, resolve_auto
from .model import TaskModel, golden_outputs, predict
from .quant import (
    LEARNED_THRESHOLDS,
    LinearInput,
    SampleStats,
    make_quantizer,
    weighted_int_thresholds,
)

CHECKPOINT_DIR = ".checkpoint"


class TrainingError(AdcforgeError):
    """Training failed (a NaN loss, an unusable dataset); nothing was written."""


# -- setup --------------------------------------------------------------------------------------
def _seed(*parts) -> int:
    h = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(h[:8], "little") & (2**62 - 1)


def _generator(device, *parts) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(_seed(*parts))
    return g


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: 'cuda' requested but no CUDA device is available; "
                          "allowed here: cpu, auto")
    return torch.device(name)


def split_validation(labels, fraction: float, seed: int, dataset: str = "?"):
    """Carve a validation split from the training labels: per class, a seeded permutation whose
    first ``round(fraction · n_class)`` items (at least one when the class has two or more) are
    validation. Returns ``(train_index, val_index)``, sorted, disjoint. Raises ConfigError when
    the training data are too small to leave both a training and a validation item."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x7A11]))
    train_idx, val_idx = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n_val = min(max(int(round(fraction * len(idx))), 1 if len(idx) > 1 else 0), len(idx) - 1)
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    train_idx = np.sort(np.concatenate(train_idx)) if train_idx else np.zeros(0, np.int64)
    val_idx = np.sort(np.concatenate(val_idx)) if val_idx else np.zeros(0, np.int64)
    if len(val_idx) == 0 or len(train_idx) == 0:
        raise ConfigError(f"data.val_fraction: {fraction} of the {len(labels)} training images "
                          f"of {dataset!r} leaves {len(val_idx)} for validation and "
                          f"{len(train_idx)} for training; each needs at least one (more data, "
                          f"or a fraction in 0.01..0.5)")
    return train_idx, val_idx


class Task:
    """Data, sensor and light of one configuration (no model)."""

    def __init__(self, cfg: dict, device: torch.device):
        from sim import load_sensor
        from sim.data import load_dataset

        d = cfg["data"]
        size = tuple(d["size"]) if d.get("size") else None
        self.train_images, self.train_labels, self.classes = load_dataset(
            d["dataset"], "train", seed=d["seed"], size=size)
        self.test_images, self.test_labels, _ = load_dataset(d["dataset"], "test", seed=d["seed"],
                                                             size=size)
        for split, imgs in (("train", self.train_images), ("test", self.test_images)):
            if len(imgs) == 0:
                raise ConfigError(f"data.dataset {d['dataset']!r}: the {split} split has no "
                                  f"samples")
        if len(self.classes) < 2:
            raise ConfigError(f"data.dataset {d['dataset']!r}: needs at least 2 classes, found "
                              f"{len(self.classes)}")
        train_idx, val_idx = split_validation(self.train_labels, d["val_fraction"], d["seed"],
                                              d["dataset"])
        self.val_images, self.val_labels = self.train_images[val_idx], self.train_labels[val_idx]
        self.train_images = self.train_images[train_idx]
        self.train_labels = self.train_labels[train_idx]
        self.val_index = val_idx
        self.height, self.width = self.train_images.shape[1:]
        s = cfg["sensor"]
        self.sensor = load_sensor(s["preset"], seed=s["seed"], width=int(self.width),
                                  height=int(self.height))
        self.device = device
        self.ts = self.sensor.torch(device)
        self.photons = cfg["photons"]
        self.input_bits = int(self.sensor.adc_bits)
        self.max_dn = int(self.sensor.max_dn)
        self.black = float(self.sensor.config.black_level_dn)
        self.train_x = torch.as_tensor(self.train_images, device=device)
        self.train_y = torch.as_tensor(self.train_labels, device=device)

    def white(self, n: int, g: torch.Generator, photons=None, per_batch=False) -> torch.Tensor:
        """Photons at white per image ``[n, 1, 1]``: fixed, or log-uniform in ``[lo, hi]``
        (one draw for all ``n`` images when ``per_batch``)."""
        p = self.photons if photons is None else photons
        if isinstance(p, (list, tuple)):
            u = torch.rand((1 if per_batch else n, 1, 1), generator=g, device=self.device)
            w = torch.exp(math.log(p[0]) + u * (math.log(p[1]) - math.log(p[0])))
            return w.expand(n, 1, 1)
        return torch.full((n, 1, 1), float(p), device=self.device)

    def capture(self, images: torch.Tensor, g: torch.Generator, photons=None,
                per_batch=False) -> torch.Tensor:
        images = torch.as_tensor(images, device=self.device)
        return self.ts.capture(images * self.white(len(images), g, photons, per_batch),
                               generator=g)

    def capture_all(self, images, g, photons=None, chunk=4096) -> torch.Tensor:
        return torch.cat([self.capture(images[i:i + chunk], g, photons)
                          for i in range(0, len(images), chunk)])


def _network(cfg: dict, task: Task, quant, g: torch.Generator) -> TaskModel:
    n = cfg["network"]
    ch = quant.channels
    if n["kind"] == "linear" and task.height * task.width * ch > 4096:
        raise ConfigError(f"network.kind: 'linear' puts all {task.height}x{task.width}x{ch} "
                          f"decoded values into one POST layer; the design file allows 4096 "
                          f"inputs. Use network.kind: cnn3 or smaller images")
    if n["kind"] in ("cnn", "cnn3") and (task.height < 5 or task.width < 5):
        raise ConfigError(f"network.kind: {n['kind']!r} needs images of at least 5x5, got "
                          f"{task.height}x{task.width}")
    model = TaskModel(quant, task.height, task.width, len(task.classes), n["kind"],
                      n["exponent_bits"], n["conv_channels"], n["hidden_channels"], g,
                      asq_bits=n["asq_bits"], bitshift_norm=n["bitshift_norm"],
                      post_bitshift_norm=n["post_bitshift_norm"], output_bits=n["output_bits"])
    return model.to(task.device)


def build_model(cfg: dict, task: Task, stats: SampleStats, init=None) -> TaskModel:
    """Quantizer and task network of ``cfg`` (``auto`` keys resolved), initialised from the
    training-sample statistics; ``init``: the start of learned thresholds (a name of
    ``quantizer.starts`` or an integer ladder; default ``quantizer.init``)."""
    cfg = resolve_auto(cfg, task.height, task.width)
    q = cfg["quantizer"]
    g = _generator("cpu", cfg["train"]["seed"], "init")
    quant = make_quantizer(q["method"], q["bits"], stats, task.input_bits, decoder=q["decoder"],
                           channels=q["channels"], width=q["decode_width"],
                           init=q["init"] if init is None else init,
                           features=task.height * task.width, generator=g,
                           threshold_param=q["threshold_param"], ste_window=q["ste_window"],
                           thresholds=q["thresholds"], estimator=q["estimator"],
                           window_anneal=q["window_anneal"])
    return _network(cfg, task, quant, g)


def task_start(cfg: dict, task: Task, stats: SampleStats) -> np.ndarray:
    """The task-aware start: train the task network on the unquantized samples (the linear
    input, :class:`~learn.quant.LinearInput`) for ``train.task_start_epochs`` epochs, then
    place the thresholds by the loss gradient with respect to each training sample,
    ``g = ∂loss/∂sample`` (:func:`~learn.quant.weighted_int_thresholds`, rule
    ``quantizer.task_weight``: ``fisher``, density ∝ (Σ g²)^(1/3) per sample value, or ``abs``,
    the histogram weighted by ``|g|``): codes go where the loss is sensitive to the sample, not
    where samples are many."""
    cfg = resolve_auto(cfg, task.height, task.width)
    tc = cfg["train"]
    g = _generator("cpu", tc["seed"], "task-start")
    model = _network(cfg, task, LinearInput(stats, task.input_bits), g)
    opt = torch.optim.Adam(model.parameters(), lr=tc["lr_network"])
    g_noise = _generator(task.device, tc["seed"], "task-start-noise")
    n, bs = len(task.train_x), tc["batch_size"]
    model.train()
    for _ in range(tc["task_start_epochs"]):
        order = torch.randperm(n, generator=g).to(task.device)
        for i in range(0, n, bs):
            idx = order[i:i + bs]
            dn = task.capture(task.train_x[idx], g_noise, per_batch=tc["photons_per"] == "batch")
            loss = F.cross_entropy(model(dn), task.train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    values, weights = [], []
    for i in range(0, n, 512):
        dn = task.capture(task.train_x[i:i + 512], g_noise).to(torch.float64)
        dn.requires_grad_(True)
        loss = F.cross_entropy(model(dn), task.train_y[i:i + 512]) * len(dn)
        (grad,) = torch.autograd.grad(loss, dn)
        values.append(dn.detach().cpu().numpy().astype(np.int64).ravel())
        weights.append(grad.abs().cpu().numpy().ravel())
    q = cfg["quantizer"]
    return weighted_int_thresholds(np.concatenate(values), np.concatenate(weights),
                                   2 ** q["bits"], 2**task.input_bits - 1, q["task_weight"])


def sample_stats(task: Task, cfg: dict) -> SampleStats:
    """Histogram of one noisy capture of the training set at the training light."""
    g = _generator(task.device, cfg["train"]["seed"], "stats")
    dn = task.capture_all(task.train_x, g)
    c = task.sensor.config
    return SampleStats.from_samples(dn.cpu().numpy(), task.max_dn, task.black,
                                    c.conversion_gain_dn_per_e,
                                    c.read_noise_e * c.conversion_gain_dn_per_e)


def _safe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", text)[:64]
    return name if re.match(r"^[A-Za-z_]", name) else f"d_{name}"[:64]


# -- the loop -----------------------------------------------------------------------------------
class _Progress:
    def __init__(self, enabled: bool, total: int, label: str):
        self.enabled = enabled
        self.bar = None
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            from adcforge.console import console

            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                                TimeElapsedColumn(), TimeRemainingColumn(), console=console())
            self.bar.start()
            self.task = self.bar.add_task(label, total=total, info="")

    def update(self, advance=0, **info):
        if self.bar is not None:
            text = "  ".join(f"{k} {v}" for k, v in info.items())
            self.bar.update(self.task, advance=advance, info=text)

    def close(self):
        if self.bar is not None:
            self.bar.stop()


def _temperature(cfg, step, total) -> float:
    t0, t1 = cfg["quantizer"]["temperature"]
    return t0 * (t1 / t0) ** min(1.0, step / max(1, total))


def _evaluate_hard(model: TaskModel, cfg, test_dn, test_y) -> float:
    model.eval()
    with torch.no_grad():
        if model.quantizer.method == "fp":
            pred = predict(model(test_dn))
        else:
            design = model.export("eval", cfg["network"]["guard_bits"],
                                  cfg["network"]["output_bits"])
            pred = predict(model.hard_logits(design, test_dn.cpu()))
    model.train()
    return float((pred == test_y.cpu().numpy()).mean())


def _atomic_torch_save(obj, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def train(config: dict | str | os.PathLike | None = None, out_dir: str | os.PathLike | None = None,
          progress: bool = True, resume: bool = False, plots: bool = True) -> dict:
    """Train one configuration and write ``out_dir/design.yaml``, ``metrics.json`` and plots.

    ``config``: a mapping, a YAML path, a bundled config name, or ``None`` (the default).
    ``out_dir``: output folder (``None``: nothing written). ``resume``: continue from
    ``out_dir/.checkpoint`` when it holds a checkpoint of the same config. Returns the metrics.
    Raises :class:`~adcforge.errors.ConfigError` for bad configs/data and :class:`TrainingError`
    for a NaN loss; in both cases nothing is written to ``out_dir``.
    """
    return train_model(config, out_dir, progress, resume, plots).metrics


@dataclass
class TrainResult:
    """What :func:`train_model` returns: the metrics, the trained model (eval mode), the exported
    design (``None`` for ``fp``), the task (data, sensor) and the test frames (DN) it was scored on.
    """

    metrics: dict
    model: TaskModel
    design: object
    task: "Task"
    test_dn: torch.Tensor


def train_model(config: dict | str | os.PathLike | None = None,
                out_dir: str | os.PathLike | None = None, progress: bool = True,
                resume: bool = False, plots: bool = True, stop_after: int | None = None
                ) -> TrainResult:
    """Like :func:`train`, returning a :class:`TrainResult`. ``stop_after``: raise
    KeyboardInterrupt after that many epochs (checkpoint kept; for testing resume)."""
    cfg = load_config(config)
    tc = cfg["train"]
    threads = torch.get_num_threads()
    torch.set_num_threads(tc["threads"])
    out = Path(out_dir) if out_dir is not None else None
    created = out is not None and not out.exists()
    ckpt_path = out / CHECKPOINT_DIR / "state.pt" if out is not None else None
    had_checkpoint = ckpt_path is not None and ckpt_path.exists()
    try:
        return _train(cfg, out, ckpt_path, progress, resume, plots, stop_after)
    except BaseException:
        # keep a checkpoint that was there before, and the one an interrupted run leaves
        if (ckpt_path is not None and ckpt_path.parent.exists() and not had_checkpoint
                and not _interrupted()):
            shutil.rmtree(ckpt_path.parent, ignore_errors=True)
        if created and out.exists() and not any(out.iterdir()):
            out.rmdir()
        raise
    finally:
        torch.set_num_threads(threads)


def _interrupted() -> bool:
    import sys

    exc = sys.exc_info()[1]
    return isinstance(exc, KeyboardInterrupt)


def run_limit(tc: dict) -> int:
    """The last epoch a start's refinement may reach: the freeze phase is the winner's."""
    return tc["epochs"] - tc["freeze_epochs"]


class _Run:
    """One training run of one model: optimiser, generators, history, and the best state on the
    validation frames so far (every choice is made on validation; test frames choose nothing)."""

    def __init__(self, cfg, task, stats, init, val_dn, val_y, start_name):
        self.cfg, self.task = cfg, task
        tc = cfg["train"]
        device = task.device
        self.model = build_model(cfg, task, stats, init)
        self.quant = self.model.quantizer
        self.start_name = start_name
        self.thr_params = self.quant.threshold_parameters()
        thr_ids = {id(p) for p in self.thr_params}
        net_params = [p for p in self.model.parameters() if id(p) not in thr_ids]
        groups = [{"params": net_params, "lr": tc["lr_network"]}]
        self.dn_param = getattr(self.quant, "param", None) == "dn"
        self.lr_thr = tc["lr_thresholds_dn"] if self.dn_param else tc["lr_thresholds"]
        if self.thr_params:
            groups.append({"params": self.thr_params, "lr": self.lr_thr})
        self.opt = torch.optim.Adam(groups)
        self.g_noise = _generator(device, tc["seed"], "noise")
        self.g_shuffle = _generator("cpu", tc["seed"], "shuffle")
        self.quant.generator = _generator(device, tc["seed"], "gumbel")
        self.val_dn, self.val_y = val_dn, val_y
        self.init_thresholds = ([int(t) for t in self.quant.int_thresholds()]
                                if self.quant.exportable else [])
        self.history = {"epoch": [], "loss": [], "train_accuracy": [], "val_accuracy": [],
                        "thresholds": []}
        self.best = None  # (val accuracy, epoch, state dict, frozen thresholds or None)
        self.warm_state = None  # the state when the thresholds start to move (train.finish_start)
        self.rounds = 0  # rounds of the start selection this run took part in
        self.samples_seen = 0
        n_train = len(task.train_x)
        self.steps_per_epoch = math.ceil(n_train / tc["batch_size"])
        self.freeze_at = tc["epochs"] - tc["freeze_epochs"]
        self.warm = min(tc["threshold_warmup_epochs"], self.freeze_at)
        self.soft_steps = max(1, self.freeze_at * self.steps_per_epoch)
        self.learn_steps = max(1, (self.freeze_at - self.warm) * self.steps_per_epoch)
        if self.warm == 0 and self.thr_params:
            self.warm_state = copy.deepcopy(self.state())

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "g_noise": self.g_noise.get_state(), "g_shuffle": self.g_shuffle.get_state(),
                "g_gumbel": self.quant.generator.get_state(), "history": self.history,
                "frozen": self.quant.frozen.clone() if self.quant.is_frozen else None,
                "best": self.best, "init_thresholds": self.init_thresholds,
                "start": self.start_name}

    def load(self, state: dict) -> None:
        if state["frozen"] is not None:
            self._freeze_to(state["frozen"])
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.g_noise.set_state(state["g_noise"])
        self.g_shuffle.set_state(state["g_shuffle"])
        self.quant.generator.set_state(state["g_gumbel"])
        self.history = state["history"]
        self.best = state["best"]

    def _freeze_to(self, thresholds) -> None:
        self.quant.frozen = torch.as_tensor(thresholds, dtype=torch.int64,
                                            device=self.quant.frozen.device).clone()
        for p in self.thr_params:
            p.requires_grad_(False)

    def val_accuracy(self) -> float:
        return _evaluate_hard(self.model, self.cfg, self.val_dn, self.val_y)

    def epoch(self, epoch: int, bar=None) -> None:
        """Train epoch ``epoch`` (0-based) of the schedule; evaluate on validation; keep the
        best state."""
        tc, task, quant, model = self.cfg["train"], self.task, self.quant, self.model
        if epoch >= self.freeze_at and not quant.is_frozen and quant.exportable:
            # the thresholds the validation frames liked best, then the network finishes on them
            if self.best is not None and self.thr_params:
                model.load_state_dict(self.best[2])
            quant.freeze()
            for p in self.thr_params:
                p.requires_grad_(False)
        n_train, bs = len(task.train_x), tc["batch_size"]
        order = torch.randperm(n_train, generator=self.g_shuffle).to(task.device)
        total_loss, correct = 0.0, 0
        for i in range(self.steps_per_epoch):
            step = epoch * self.steps_per_epoch + i
            quant.temperature = _temperature(self.cfg, step, self.soft_steps)
            p = (step - self.warm * self.steps_per_epoch) / self.learn_steps
            quant.progress = min(max(p, 0.0), 1.0)
            if tc["lr_decay"] == "cosine":  # the network's rate: cosine to a tenth at the end
                done = step / max(1, tc["epochs"] * self.steps_per_epoch)
                self.opt.param_groups[0]["lr"] = tc["lr_network"] * (
                    0.1 + 0.45 * (1 + math.cos(math.pi * done)))
            if self.thr_params:  # thresholds wait while the network learns to use the codes
                lr = 0.0 if epoch < self.warm else self.lr_thr
                if self.dn_param:  # DN steps decay (cosine, to a tenth) as the window narrows
                    lr *= 0.1 + 0.45 * (1 + math.cos(math.pi * quant.progress))
                self.opt.param_groups[1]["lr"] = lr
            idx = order[i * bs:(i + 1) * bs]
            dn = task.capture(task.train_x[idx], self.g_noise,
                              per_batch=tc["photons_per"] == "batch")
            logits = model(dn)
            loss = F.cross_entropy(logits, task.train_y[idx])
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"the loss became {float(loss.detach())} at epoch {epoch + 1}, "
                    f"step {i + 1}: training stopped and nothing was written; lower "
                    f"train.lr_network ({tc['lr_network']}) or train.lr_thresholds "
                    f"({self.lr_thr})")
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == task.train_y[idx]).sum())
            self.samples_seen += len(idx)
        acc = self.val_accuracy() if quant.exportable or quant.method == "fp" else float("nan")
        h = self.history
        h["epoch"].append(epoch + 1)
        h["loss"].append(total_loss / n_train)
        h["train_accuracy"].append(correct / n_train)
        h["val_accuracy"].append(acc)
        h["thresholds"].append([int(t) for t in quant.int_thresholds()] if quant.exportable
                               else [])
        if self.best is None or acc > self.best[0]:
            frozen = quant.frozen.clone() if quant.is_frozen else None
            self.best = (acc, epoch + 1, copy.deepcopy(model.state_dict()), frozen)
        if epoch + 1 == self.warm and self.thr_params:
            self.warm_state = copy.deepcopy(self.state())
        if bar is not None:
            bar.update(advance=1, loss=f"{h['loss'][-1]:.3f}",
                       train=f"{h['train_accuracy'][-1]:.3f}", val=f"{acc:.3f}")

    def finish(self) -> None:
        """Load the best state on validation (the exported one)."""
        if self.best is not None:
            _, _, state, frozen = self.best
            self.quant.frozen = (frozen.clone() if frozen is not None else
                                 torch.zeros(0, dtype=torch.int64, device=self.quant.frozen.device))
            self.model.load_state_dict(state)


def validation_frames(task: "Task", captures: int, g: torch.Generator):
    """The validation frames: every validation image captured ``captures`` times, each with
    fresh sensor noise (``train.val_captures``), and their labels, repeated. A validation score
    is the mean accuracy over the captures, so a choice follows one noise draw less often."""
    images = torch.as_tensor(task.val_images, device=task.device)
    frames = task.capture_all(torch.cat([images] * captures), g)
    return frames, torch.cat([torch.as_tensor(task.val_labels)] * captures)


def _train(cfg, out, ckpt_path, progress, resume, plots, stop_after) -> TrainResult:
    t_start = time.perf_counter()
    cfg_key = json.dumps(cfg, sort_keys=True)
    device = _device(cfg["train"]["device"])
    task = Task(cfg, device)
    cfg = resolve_auto(cfg, task.height, task.width)
    tc, qc, nc = cfg["train"], cfg["quantizer"], cfg["network"]
    stats = sample_stats(task, cfg)
    g_test = _generator(device, tc["seed"], "test")
    test_dn = task.capture_all(torch.as_tensor(task.test_images, device=device), g_test)
    n_cap = tc["val_captures"]
    val_dn, val_y = validation_frames(task, n_cap, _generator(device, tc["seed"], "val"))
    epochs = tc["epochs"]
    learned_thresholds = qc["method"] in LEARNED_THRESHOLDS
    starts = qc["starts"] if learned_thresholds else [None]
    # 2**bits codes reach every sample value lo..hi: the uniform ladder over the range gives each
    # value its own code, lossless there, and no ladder can do better (train.hold_lossless)
    lossless = bool(learned_thresholds and tc["hold_lossless"]
                    and 2 ** qc["bits"] >= stats.hi - stats.lo + 1)
    if lossless:
        starts = ["uniform"]

    state = None
    if resume and ckpt_path is not None and ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=False)
        if state["config"] != cfg_key:
            raise ConfigError(f"{ckpt_path}: the checkpoint was made with a different config; "
                              f"delete it or drop --resume")

    t_loop = time.perf_counter()
    selection = {}
    if state is not None:
        run = _Run(cfg, task, stats, state["run"]["init_thresholds"] or None, val_dn, val_y,
                   state["run"]["start"])
        run.load(state["run"])
        run.warm_state = state.get("warm")
        extra_held = state.get("extra_held") or {}
        selection, start_epoch, samples_before = (state["selection"], state["epoch"],
                                                  state["samples_seen"])
    else:
        extra_held = {}  # start name -> (ladder, state at the end of its warm-up)
        ladders = {s: (task_start(cfg, task, stats) if s == "task" else s) for s in starts}
        start_epoch, samples_before = 0, 0
        if len(starts) > 1 and tc["start_epochs"] > 0:
            # several starts, the first start_epochs of the schedule each; the better half on
            # validation runs the next start_epochs (train.start_selection: halving) until one
            # is left, which continues
            k = max(1, min(tc["start_epochs"], run_limit(tc)))
            halving = tc["start_selection"] == "halving"
            bar = _Progress(progress, k * len(starts), f"starts {qc['method']} {qc['bits']}b")
            try:
                alive = [_Run(cfg, task, stats, ladders[s], val_dn, val_y, s) for s in starts]
                runs, epoch0 = list(alive), 0
                while True:
                    for r in alive:
                        for e in range(epoch0, epoch0 + k):
                            r.epoch(e, bar)
                    epoch0 += k
                    ranked = sorted(alive, key=lambda r: -r.best[0])  # stable: first among equals
                    keep = (len(alive) + 1) // 2 if halving else 1
                    if keep < len(alive):
                        for r in ranked[keep:]:
                            r.rounds = epoch0 // k
                    alive = ranked[:keep]
                    if len(alive) == 1 or epoch0 + k > run_limit(tc):
                        break
                    if bar.bar is not None:
                        bar.bar.update(bar.task, total=bar.bar.tasks[0].total + k * len(alive))
            finally:
                bar.close()
            run = alive[0]
            for r in alive:
                r.rounds = epoch0 // k
            samples_before = sum(r.samples_seen for r in runs if r is not run)
            # the quantile start (method hist's own run) is held beside the learned run too
            # when another start was chosen (train.finish_start)
            extra_held = {r.start_name: (r.init_thresholds, r.warm_state) for r in runs
                          if r is not run and r.start_name == "quantile"
                          and r.warm_state is not None}
            selection = {r.start_name: {"val_accuracy": r.best[0], "rounds": r.rounds,
                                        "thresholds": r.init_thresholds} for r in runs}
            start_epoch = epoch0
        else:
            run = _Run(cfg, task, stats, ladders[starts[0]], val_dn, val_y, starts[0])
            if lossless:
                run._freeze_to(run.init_thresholds)
            if starts[0] is not None:
                selection = {starts[0]: {"thresholds": run.init_thresholds}}

        if ckpt_path is not None and start_epoch:
            _atomic_torch_save({"config": cfg_key, "epoch": start_epoch, "run": run.state(),
                                "warm": run.warm_state, "extra_held": extra_held,
                                "selection": selection, "samples_seen": samples_before},
                               ckpt_path)
        if stop_after is not None and stop_after <= start_epoch < epochs:
            raise KeyboardInterrupt(f"stopped after epoch {start_epoch}")
    bar = _Progress(progress, epochs, f"train {qc['method']} {qc['bits']}b")
    bar.update(advance=start_epoch)
    # the start ladders, trained beside the learned one from the epoch its thresholds start to
    # move, on the same schedule, their ladders held (train.finish_start): the chosen start's,
    # and the quantile start's when another was chosen
    held = []
    for h_state in (state or {}).get("held") or []:
        h = _Run(cfg, task, stats, h_state["init_thresholds"], val_dn, val_y, h_state["start"])
        h.load(h_state)
        held.append(h)
    finish = (tc["finish_start"] and run.thr_params and run.quant.exportable and not lossless)
    try:
        for epoch in range(start_epoch, epochs):
            if not held and finish and run.warm_state is not None:
                sources = {run.start_name: (run.init_thresholds, run.warm_state), **extra_held}
                for name, (ladder, warm_state) in sources.items():
                    h = _Run(cfg, task, stats, ladder, val_dn, val_y, name)
                    h.load(warm_state)
                    h._freeze_to(ladder)
                    for e in range(run.warm, epoch):  # catch up with the learned run
                        h.epoch(e)
                    held.append(h)
            run.epoch(epoch, bar)
            for h in held:
                h.epoch(epoch)
            if ckpt_path is not None:
                waiting = not held
                _atomic_torch_save({"config": cfg_key, "epoch": epoch + 1, "run": run.state(),
                                    "held": [h.state() for h in held],
                                    "warm": run.warm_state if waiting else None,
                                    "extra_held": extra_held if waiting else {},
                                    "selection": selection,
                                    "samples_seen": samples_before}, ckpt_path)
            if stop_after is not None and epoch + 1 >= stop_after and epoch + 1 < epochs:
                raise KeyboardInterrupt(f"stopped after epoch {epoch + 1}")
    finally:
        bar.close()
    train_s = time.perf_counter() - t_loop
    samples_seen = samples_before + run.samples_seen
    finish = None
    exported = "learned"
    if held:
        # the network finished on the held ladders too, from the same state: the best of them
        # on validation is exported, so the export is never worse than its start, nor than
        # method hist's own run
        samples_seen += sum(h.samples_seen for h in held)
        finish = {"learned": run.best[0]}
        for h in held:
            key = "start" if h.start_name == run.start_name else h.start_name
            finish[key] = h.best[0]
            if h.best[0] > run.best[0]:
                run.best, exported = h.best, key
    run.finish()
    model, quant, history = run.model, run.quant, run.history
    init_thresholds = run.init_thresholds
    h_val = history["val_accuracy"]
    warm = run.warm
    # the start ladder's own score: the last epoch before the thresholds moved
    val_start = (max(h_val[:warm]) if run.thr_params and warm and len(h_val) >= warm
                 else None)

    # -- export and evaluation ------------------------------------------------------------------
    model.eval()
    test_np = test_dn.cpu().numpy().astype(np.int64)
    metrics = {
        "method": qc["method"], "bits": qc["bits"], "photons": cfg["photons"],
        "dataset": cfg["data"]["dataset"], "sensor": cfg["sensor"]["preset"],
        "network": nc["kind"], "epochs": epochs, "seed": tc["seed"],
        "test_samples": int(len(test_np)), "val_samples": len(task.val_labels),
        "val_captures": n_cap,
        "val_fraction": cfg["data"]["val_fraction"],
        "device": device.type,  # where it trained (train.device "auto": cuda where present)
    }
    if quant.exportable or quant.method == "fp":
        metrics["val_accuracy"] = run.val_accuracy()  # the exported model, integer pipeline
        model.eval()
    metrics["val_accuracy_start"] = val_start
    metrics["best_epoch"] = run.best[1] if run.best is not None else None
    metrics["start"] = run.start_name
    metrics["finish_val_accuracy"] = finish
    metrics["finish_exported"] = exported
    metrics["held_lossless"] = lossless
    metrics["starts"] = selection
    metrics["chosen_on"] = "validation split (data.val_fraction of the training data)"
    design = None
    if quant.exportable:
        prov = {"tool": "adcforge learn", "method": qc["method"], "bits": qc["bits"],
                "photons": cfg["photons"], "dataset": cfg["data"]["dataset"],
                "data_seed": cfg["data"]["seed"],
                **({"data_size": cfg["data"]["size"]} if cfg["data"].get("size") else {}),
                "sensor": {"preset": cfg["sensor"]["preset"], "seed": cfg["sensor"]["seed"]},
                "network": nc["kind"], "seed": tc["seed"],
                "classes": [str(c) for c in task.classes]}
        design = model.export(_safe_name(cfg["name"]), nc["guard_bits"], nc["output_bits"], prov)
        hard = model.hard_outputs(design, torch.as_tensor(test_np))["outputs"]
        gold = golden_outputs(design, test_np, model.kernel)
        if not np.array_equal(hard.numpy(), gold):
            raise TrainingError("internal error: the hard-eval model and the golden model "
                                "disagree on the exported design")
        pred = predict(model.logits_from_outputs(design, gold))
        metrics["test_accuracy"] = float((pred == task.test_labels).mean())
        metrics["measured_through"] = "golden model (adcforge.golden.ref_adc_pipeline)"
        metrics["thresholds"] = [int(t) for t in design.thresholds]
        metrics["initial_thresholds"] = init_thresholds
        metrics["decode_frac_bits"] = design.decode.frac_bits
        with torch.no_grad():
            metrics["test_accuracy_float"] = float(
                (predict(model(test_dn)) == task.test_labels).mean())
        prov["test_accuracy"] = metrics["test_accuracy"]
    else:
        with torch.no_grad():
            metrics["test_accuracy"] = float((predict(model(test_dn)) == task.test_labels).mean())
        metrics["measured_through"] = "float model (fp has no integer design)"
    metrics["tie_break"] = "argmax, lowest class index among equal outputs"
    metrics["final_train_loss"] = history["loss"][-1]
    metrics["history"] = history
    metrics["sample_range_dn"] = [stats.lo, stats.hi]
    metrics["train_seconds"] = train_s
    metrics["train_samples_per_s"] = samples_seen / train_s if train_s > 0 else None
    metrics["wall_seconds"] = time.perf_counter() - t_start

    if out is not None:
        _write_outputs(out, design, metrics, stats, history, plots)
        if ckpt_path is not None and ckpt_path.parent.exists():
            shutil.rmtree(ckpt_path.parent, ignore_errors=True)
    return TrainResult(metrics, model, design, task, test_dn)


def _write_outputs(out: Path, design, metrics, stats, history, plots: bool) -> None:
    """Write everything into a staging folder next to ``out``, then move the files in."""
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".stage-", dir=out))
    try:
        if design is not None:
            save_design(design, stage / "design.yaml")
            metrics["design_sha256"] = hashlib.sha256(dump_design(design).encode()).hexdigest()
        (stage / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        if plots:
            from .plots import plot_thresholds, plot_training

            if design is not None:
                plot_thresholds(stats, metrics["initial_thresholds"], list(design.thresholds),
                                stage / "thresholds.png", title=f"{metrics['method']}, "
                                f"{metrics['bits']} bits, {metrics['photons']} photons")
            plot_training(history, stage / "training.png")
        for f in sorted(stage.iterdir()):
            f.replace(out / f.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)

