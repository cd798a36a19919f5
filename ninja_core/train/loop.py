"""The training loop, for any network: manual-backward steps, the audit, events, evaluation, samples.

    from ninja_core.train import TrainConfig, iter_training, train
    result = train(TrainConfig(net="wavenet", steps=20_000, audit_every=1_000))
    result.val_loss, result.samples, result.audit[-1].max_rel_diff
    result.model.save("model.pt")

The optimizer is driven only by the network's hand-written backward (`Network.train_step`, or the
tape's fused manual backward with backward="reference"); autograd runs only in the optional audit,
which computes autograd's gradients of the same minibatch every `audit_every` steps and records how
far the manual ones are. All randomness comes from one generator seeded by the config: it draws
the parameters (`Network.init_params`) and then every minibatch, so a run is reproducible bit for
bit on the same machine and thread setting.

After training, the network's inference statistics (batchnorm) are calibrated over the whole
training split, then come the train / val / test losses and names sampled from the model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator
from dataclasses import replace
from pathlib import Path

import torch

from ..config import ConfigError
from ..data import DEFAULT_DATA, Dataset, load_dataset
from ..i18n import german, tr
from ..nets import NETS, Network, generator, get_net
from ..nets.shared_train import Params
from .audit import audit_grads, autograd_param_grads, health
from .config import TrainConfig
from .events import AuditEvent, DoneEvent, ProgressEvent, StatsEvent, TrainEvent, TrainResult
from .model import TrainedModel, sample_names, split_loss
from .step import make_optimizer, make_step, minibatches

german({
    "{net} cannot be trained here yet: it has no plain forward for evaluation and sampling (Network.logits); "
    "the networks that have one are: {allowed}":
        "{net} lässt sich hier noch nicht trainieren: es hat keinen einfachen Vorwärtsdurchlauf für Auswertung und "
        "Stichproben (Network.logits); einen haben: {allowed}",
})


class _OwnTime:
    """A generator's own time and torch thread setting: both apply only while its code runs, not
    while it is suspended at a yield. Why threads this way: torch's thread count is per OS thread
    under OpenMP, and a consumer (a web server's thread pool) may resume the generator on a
    different thread each time; setting it on resume and restoring it before each yield keeps the
    run on `threads` and leaves the consumer's setting alone."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.busy = 0.0
        self.cpu = 0.0  # the thread CPU time of the spans (what a busy machine does not inflate)
        self.t0 = 0.0
        self.c0 = 0.0
        self.saved = 0
        self.active = False

    def enter(self) -> None:
        self.saved = torch.get_num_threads()
        if self.threads > 0 and self.saved != self.threads:
            torch.set_num_threads(self.threads)
        self.t0, self.c0 = time.perf_counter(), time.thread_time()
        self.active = True

    def leave(self) -> None:
        if self.active:
            self.busy += time.perf_counter() - self.t0
            self.cpu += time.thread_time() - self.c0
            if torch.get_num_threads() != self.saved:
                torch.set_num_threads(self.saved)
            self.active = False

    def elapsed(self) -> float:
        return self.busy + (time.perf_counter() - self.t0 if self.active else 0.0)

    def cpu_elapsed(self) -> float:
        return self.cpu + (time.thread_time() - self.c0 if self.active else 0.0)

    def emit(self, event: TrainEvent) -> Generator[TrainEvent, None, None]:
        self.leave()
        yield event
        self.enter()


def resolve_dataset(data: Dataset | str | Path | None, block_size: int) -> Dataset:
    """A Dataset, a path or None (the bundled names) as a Dataset with contexts of block_size."""
    dataset = data if isinstance(data, Dataset) else load_dataset(data, block_size)
    if dataset.block_size != block_size:  # same words, contexts of the config's length
        dataset = load_dataset(dataset.path, block_size)
    return dataset


def dataset_for(cfg: TrainConfig, data: Dataset | str | Path | None) -> Dataset:
    """The words of `data` (or cfg.data, or the bundled names) with contexts of the network's length."""
    return resolve_dataset(data if data is not None else cfg.data,
                           get_net(cfg.net).context_length(cfg.model_config()))


def require_forward(net: Network) -> None:
    """Evaluation, sampling and the benchmark's autograd baseline run the network's plain forward
    (`Network.logits`). Raises ConfigError (field "net") naming the networks that have one."""
    if type(net).logits is Network.logits:
        able = [name for name, other in NETS.items() if type(other).logits is not Network.logits]
        raise ConfigError("net", tr("{net} cannot be trained here yet: it has no plain forward for evaluation and "
                                    "sampling (Network.logits); the networks that have one are: {allowed}",
                                    net=net.name, allowed=", ".join(able)))


def _next_multiple(step: int, every: int) -> int:
    return (step // every + 1) * every


def _training(cfg: TrainConfig, dataset: Dataset, should_stop: Callable[[], bool] | None,
              evaluate: bool) -> Generator[TrainEvent, None, Params]:
    """The run as a generator of events; returns the trained parameters (plain tensors)."""
    own = _OwnTime(cfg.threads)
    own.enter()
    try:
        net, model_cfg = get_net(cfg.net), cfg.model_config()
        g = generator(model_cfg)
        initial = net.init_params(model_cfg, dataset.vocab.size, g)  # the tape's parameters, in order
        batches = minibatches(net, model_cfg, dataset, g, cfg.steps, flat=True)  # g, continued
        step_fn = make_step(net, model_cfg, initial, cfg.backward)
        params, grads = step_fn.params, step_fn.grads  # views of the step's storage
        optimizer = make_optimizer(cfg.optimizer, step_fn, net, cfg.lr, cfg.weight_decay)
        forward_backward, update = step_fn.forward_backward, optimizer.step
        step, stopped = 0, False
        loop_start = own.elapsed()
        last_step, last_time = 0, loop_start
        while step < cfg.steps and not stopped:
            lr = cfg.lr_at(step)
            if cfg.audit_every and step % cfg.audit_every == 0:
                if should_stop is not None and should_stop():
                    stopped = True
                else:
                    Xb, Yb = next(batches)
                    reference = autograd_param_grads(params, Xb.view(cfg.batch_size, -1), Yb.view(-1), model_cfg)
                    with torch.inference_mode():
                        forward_backward(Xb, Yb)
                        update(lr)
                    step += 1
                    rel, absdiff, scale = audit_grads(grads, reference)
                    yield from own.emit(AuditEvent(step - 1, rel, absdiff, scale))
            else:
                # Plain steps up to the next step where anything else happens.
                end = cfg.steps
                for every in (cfg.progress_every, cfg.stats_every, cfg.audit_every):
                    if every:
                        end = min(end, _next_multiple(step, every))
                if step < cfg.decay_step:
                    end = min(end, cfg.decay_step)
                # inference mode, not just no_grad: no version counters or view tracking for the ~35 small
                # kernels of a step (the MLP's step took 70 us instead of 75 here). Every optimizer step runs
                # in it, so an optimizer's state (AdamW's moments) is made and updated in it alike.
                with torch.inference_mode():
                    if should_stop is None:
                        for _ in range(end - step):
                            forward_backward(*next(batches))
                            update(lr)
                        step = end
                    else:
                        while step < end:
                            if should_stop():
                                stopped = True
                                break
                            forward_backward(*next(batches))
                            update(lr)
                            step += 1
            if cfg.stats_every and step > 0 and step % cfg.stats_every == 0 and not stopped:
                ratios, saturation, by_node = health(params, grads, step_fn.activations(), lr)
                yield from own.emit(StatsEvent(step, ratios, saturation, lr, by_node))
            if cfg.progress_every and step > last_step and (step % cfg.progress_every == 0 or step == cfg.steps or stopped):
                now = own.elapsed()
                rate = (step - last_step) / (now - last_time) if now > last_time else math.inf
                last_step, last_time = step, now
                yield from own.emit(ProgressEvent(step, cfg.steps, step_fn.take_loss(), lr, rate))
        loop_seconds = own.elapsed() - loop_start
        trained = {name: t.detach().clone(memory_format=torch.contiguous_format) for name, t in params.items()}
        if evaluate:
            with torch.no_grad():
                stats = net.calibrate(model_cfg, trained, dataset.Xtr)
                losses = [split_loss(cfg, trained, stats, X, Y)
                          for X, Y in ((dataset.Xtr, dataset.Ytr), (dataset.Xdev, dataset.Ydev), (dataset.Xte, dataset.Yte))]
            steps_per_s = step / loop_seconds if loop_seconds > 0 else math.nan
            metrics = {"train_loss": losses[0], "val_loss": losses[1], "test_loss": losses[2], "steps": float(step)}
            # the model records the words it learned (data given as an argument overrides cfg.data)
            trained_on = None if Path(dataset.path) == DEFAULT_DATA else dataset.path
            model = TrainedModel(replace(cfg, data=trained_on), dataset.vocab, trained, stats, metrics)
            samples = sample_names(cfg, trained, stats, dataset.vocab, cfg.n_samples, cfg.sample_seed)
            yield from own.emit(DoneEvent(losses[0], losses[1], losses[2], own.elapsed(), step, steps_per_s,
                                          samples, stopped, model, own.cpu_elapsed()))
        return trained
    finally:
        own.leave()


def iter_training(cfg: TrainConfig | None = None, data: Dataset | str | Path | None = None,
                  should_stop: Callable[[], bool] | None = None) -> Generator[TrainEvent, None, Params]:
    """The run as a stream of events: progress, audit, stats (as configured), then one done.

    `data` overrides `cfg.data` (a Dataset or a path). The data is loaded here, so a bad word list
    raises DataError at the call, not at the first event. Stopping: should_stop() is asked before
    every optimizer step; when it says True the loop ends and the done event (stopped=True) follows
    after the evaluation (~0.3 s for the MLP at n_hidden 200 on the bundled names, ~1 s for the
    WaveNet). Closing the generator (`.close()`, or a consumer that goes away) stops at once without
    evaluating. (The generator's return value, seen only by a consumer that catches StopIteration,
    is the trained parameters; the done event carries them too, as `done.model`.) Torch's thread
    count is `cfg.threads` only while the generator runs; the consumer's setting is restored at
    every yield. Raises ConfigError / DataError for a bad config or word list, ConfigError for a
    network without a plain forward (`require_forward`).
    """
    cfg = cfg or TrainConfig()
    require_forward(get_net(cfg.net))
    return _training(cfg, dataset_for(cfg, data), should_stop, evaluate=True)


def train(cfg: TrainConfig | None = None, data: Dataset | str | Path | None = None,
          should_stop: Callable[[], bool] | None = None,
          on_event: Callable[[TrainEvent], None] | None = None) -> TrainResult:
    """Run iter_training to the end and collect the result; `on_event` sees every event (the CLI's
    progress bar). In a notebook the result shows as a table (losses, time, samples, audit)."""
    cfg = cfg or TrainConfig()
    audits: list[AuditEvent] = []
    done: DoneEvent | None = None
    for event in iter_training(cfg, data, should_stop):
        if on_event is not None:
            on_event(event)
        if isinstance(event, AuditEvent):
            audits.append(event)
        elif isinstance(event, DoneEvent):
            done = event
    if done is None:  # cannot happen: the generator always ends with a done event
        raise RuntimeError("training ended without a done event")
    return TrainResult(cfg, done.model, done.train_loss, done.val_loss, done.test_loss, done.steps, done.seconds,
                       done.steps_per_s, done.samples, audits, done.stopped, done.cpu_seconds)
