"""`sepspec train SPEC --seeds 0,1,2 --stacked`: several seeds of one recipe trained in one process, in one compiled
step. On a GPU an 80k-parameter network leaves most of the chip idle; instead of a process per seed (`seeds.py`),
one Keras model holds every seed's network side by side and one `fit` steps them all.

Each seed is still an ordinary run, set up exactly as alone (`trainer.Training`, seeded weights, data order,
augmentation and dropout; its own folder `OUT/seedK`): only the pass over the epoch's batches is shared. The
stacked model's loss is the sum of the seeds' losses, and nothing in the step mixes them (no weight is shared,
batch norm sees one seed's batch, the optimizer's state is per weight), so each seed's weights move as in a run of
its own; `tests/test_stacked.py` checks that against separate runs. After every epoch each seed is validated
and committed on its own, with its share of the optimizer's state copied into its checkpoint, so a seed's folder
also resumes alone (`--resume OUT/seedK`), and `--resume OUT` resumes them together (a seed left an epoch behind
by a kill first trains alone to the others' epoch).

What would couple the seeds is refused: a `reduce_on_plateau` schedule (each seed's rate would follow its own
validation loss), float16's loss scale (one scale, and a step skipped for all when one seed overflows) and a
distribution strategy; so is a layer's L1 / L2 penalty, which would step right but which a seed's logged loss
(the cross-entropy of its outputs) could not include as a run alone logs it. A seed whose loss is not finite
stops at the end of that epoch; the others go on.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import replace

import numpy as np

from . import rundir
from .compiled import jit, optimizer, recipe_loss, spared_from_decay
from .lock import hold
from .options import Options, Result, TrainError
from .pipeline import stacked_batches
from .seeds import check_out, finished, read_group, write_group
from .terminal import Progress, stop_signals
from .trainer import Training, keras_globals_kept, last, prepare, reopen, start_record

LOSS = "epoch_loss"  # each seed's training loss as its run alone logs it (`_loss_metric`)


def check_stackable(report, opts: Options) -> None:
    """Refuse, before anything is written, a recipe whose seeds could not be stepped independently together."""
    t = report.spec.train
    if t.schedule.name == "reduce_on_plateau":
        raise TrainError("--stacked: the reduce_on_plateau schedule sets each seed's rate from its own validation "
                         "loss, and stacked seeds share one step; train the seeds in processes of their own "
                         "(--seeds without --stacked)")
    if opts.precision == "mixed_float16":
        raise TrainError("--stacked: float16's loss scale would be shared by the seeds (one seed's overflow would "
                         "skip every seed's step); use mixed_bfloat16, or --seeds without --stacked")
    if opts.strategy != "default":
        raise TrainError(f"--stacked: --strategy {opts.strategy} is not supported with stacked seeds (one device)")
    penalised = [r.name for r in report.rows if getattr(r.layer, "l1", 0) or getattr(r.layer, "l2", 0)]
    if penalised:  # each seed's penalty is in the one summed loss, but a seed's logged loss could not hold its own
        raise TrainError(f"--stacked: {penalised[0]} has an l1/l2 penalty, which a run alone logs in its loss and a "
                         "stacked seed's loss cannot; train the seeds in processes of their own (--seeds without "
                         "--stacked), or decay the weights with train.optimizer.weight_decay instead")


def train_stacked(report, opts: Options, seeds: list[int], out: str) -> list[Result]:
    """New runs `OUT/seedK` of the checked spec for every seed K, trained together."""
    check_stackable(report, opts)
    check_out(out)
    data = prepare(report, replace(opts, seed=seeds[0]))
    with contextlib.ExitStack() as held:
        write_group(out, seeds, stacked=True)
        members = []
        for k in seeds:
            o = replace(opts, seed=k, out=os.path.join(out, f"seed{k}"), spec=os.path.abspath(opts.spec)
                        if opts.spec else None, data=os.path.abspath(opts.data) if opts.data else None)
            run = rundir.new_run_dir(o.out, report.spec.name)
            held.enter_context(hold(run))
            start_record(run, report.spec, o, data, stacked=os.path.abspath(out))
            members.append((run, report, o, None, data))
        return _together(members, out)


def resume_stacked(out: str, epochs: int | None = None, *, data: str | None = None) -> list[Result]:
    """Continue seeds trained together (`OUT/seeds.json`) from their last committed epochs."""
    seeds, _ = read_group(out)
    runs = [os.path.join(out, f"seed{k}") for k in seeds]
    for run in runs:
        if not rundir.is_run(run):
            raise TrainError(f"{run}: not a run directory (no {rundir.RECORD} or {rundir.SPEC})")
    with contextlib.ExitStack() as held:
        members, loaded = [], None
        for run in runs:
            held.enter_context(hold(run))
            if finished(run, epochs):
                print(f"[{os.path.basename(run)}] already finished ({rundir.read_state(run)['epoch']} epochs)",
                      flush=True)
                continue
            report, opts, state, loaded = reopen(run, epochs, data, None, loaded)
            check_stackable(report, opts)
            members.append((run, report, opts, state, loaded))
        if not members:
            raise TrainError(f"{out}: every seed has finished (--resume {out} --epochs N trains them further)")
        return _together(members, out)


def _together(members: list[tuple], out: str) -> list[Result]:
    with keras_globals_kept():
        trainings = []
        for m in members:  # every seed set up as alone, on the first one's copy of the data
            trainings.append(Training(*m, scope=os.path.basename(m[0]), like=trainings[0] if trainings else None))
        statuses = Stacked(trainings, out).run()
        return [Result(statuses[tr.run], tr.run) for tr in trainings]


class Stacked:
    """The seeds' `Training`s stepped together by one model (`model`), with one optimizer over all their weights."""

    def __init__(self, trainings: list[Training], out: str):
        self.keras, self.out = trainings[0].keras, out
        self.status: dict[str, str] = {}
        self.live = trainings
        self.model = None

    def run(self) -> dict[str, str]:
        """Every seed to its end; {run folder: status}."""
        with stop_signals():
            try:
                self._catch_up()
                while self.live and self.live[0].done < self.live[0].t.epochs:
                    self.epoch(self.live[0].done)
                for tr in self.live:
                    self.status[tr.run] = "finished"
            except KeyboardInterrupt:
                for tr in self.live:
                    self.status[tr.run] = "interrupted"
                done = min((tr.done for tr in self.live), default=0)
                print(f"\ninterrupted; the seeds' runs are saved up to epoch {done}. Resume them with:\n"
                      f"  sepspec train --resume {self.out}", file=sys.stderr, flush=True)
        for tr in self.live:
            tr.finish(self.status[tr.run])
        return self.status

    def _catch_up(self) -> None:
        """Seeds a kill left behind the others (the commits of one epoch are one per seed) train alone to them."""
        ahead = max(tr.done for tr in self.live)
        for tr in self.live:
            if tr.done < ahead:
                tr.say(f"epoch {tr.done}, behind the other seeds' {ahead}: training alone to epoch {ahead}")
                status = tr.epochs(until=ahead)
                if status == "interrupted":
                    raise KeyboardInterrupt
                if status != "running" and status != "finished":  # nan: it stops here, the others go on
                    self._drop(tr, status)

    def _drop(self, tr: Training, status: str) -> None:
        self.status[tr.run] = status
        tr.finish(status)
        self.live = [t for t in self.live if t is not tr]
        self.model = None  # stepped without it from now on

    # -- per epoch
    def epoch(self, e: int) -> None:
        """One pass of every live seed over its epoch-e batches in one `fit`, then each validated and committed."""
        keras, lead = self.keras, self.live[0]
        if self.model is None:
            self.model = self._compile()
        model = self.model
        lr, stepwise = lead.rate(e, model.optimizer)
        names = [tr.scope for tr in self.live]
        keys = [f"{n}_" if len(names) > 1 else "" for n in names]  # Keras names one output's figures without it
        ds = stacked_batches([tr.batches(e) for tr in self.live], names)
        progress = Progress(keras, e + 1, lead.t.epochs, lead.steps,
                            keys=([f"{k}{LOSS}" for k in keys], [f"{k}accuracy" for k in keys]))
        t0 = time.perf_counter()
        h = model.fit(ds, epochs=e + 1, initial_epoch=e, verbose=0, shuffle=False,
                      callbacks=stepwise + ([progress.cb] if progress.cb else []) + self._averaging())
        t_train = time.perf_counter() - t0
        progress.clear()
        for tr, key in zip(list(self.live), keys):
            got = tr.scored(e, lr, last(h, f"{key}{LOSS}"), last(h, f"{key}accuracy"), t_train)
            if got is None:
                self._drop(tr, "nan")
                continue
            share(tr.model.optimizer, model.optimizer, into_seed=True)  # into the seed's checkpoint
            tr.commit(*got)

    def _averaging(self) -> list:
        """One callback that updates every seed's weight average after each step (on JAX once the stacked
        model's state is written back to the weights the averages read)."""
        averages = [tr.average for tr in self.live if tr.average is not None]
        if not averages:
            return []
        model = self.model

        def update(*_, **__):
            if hasattr(model, "jax_state_sync"):
                model.jax_state_sync()
            for a in averages:
                a.update()

        return [self.keras.callbacks.LambdaCallback(on_train_batch_end=update)]

    def _compile(self):
        """The live seeds' models as one (`stack_models`), its optimizer's state taken from the seeds' own
        optimizers: zeros when new, the checkpoints' when resumed."""
        lead = self.live[0]
        model = stack_models(self.keras, [tr.model for tr in self.live], [tr.scope for tr in self.live], lead.t,
                             lead.steps, jit(self.keras, lead.opts))
        for tr in self.live:
            if not tr.model.optimizer.built:
                tr.model.optimizer.build(tr.model.trainable_variables)
            share(tr.model.optimizer, model.optimizer, into_seed=False)
        return model


def stack_models(keras, models: list, names: list[str], t, steps: int, jit_compile: bool, steps_per_execution: int = 1):
    """Models of one spec, each built in the name scope `names[k]`, side by side as one model (input k to model k,
    output `names[k]`), compiled with the recipe's optimizer over all their weights, its loss per seed (summed)
    and per seed the accuracy and the epoch's loss as a run alone logs them; the optimizer built."""
    model = _stack_class(keras)(models, names)
    seeds = list(zip(names, models))
    model.compile(optimizer=optimizer(keras, t, steps), loss={n: recipe_loss(keras, m, t) for n, m in seeds},
                  metrics={n: ["accuracy", _loss_metric(keras, m, t)] for n, m in seeds}, jit_compile=jit_compile,
                  steps_per_execution=steps_per_execution)
    spared = [w for m in models for w in spared_from_decay(m, t)]
    if spared:
        model.optimizer.exclude_from_weight_decay(var_list=spared)
    model.optimizer.build(model.trainable_variables)
    return model


def _loss_metric(keras, model, t):
    """A seed's epoch loss as a run alone logs it: the mean over the epoch's images. (Keras's own per-output loss
    averages the batches' means unweighted when TensorFlow traces the step for any batch size, which a short last
    batch makes it do.)"""
    loss = recipe_loss(keras, model, t)
    return keras.metrics.MeanMetricWrapper(keras.losses.categorical_crossentropy, name=LOSS,
                                           from_logits=loss.from_logits, label_smoothing=loss.label_smoothing)


def share(seed, stack, *, into_seed: bool) -> None:
    """A seed's share of the stacked optimizer's state, copied into the seed's own optimizer (`into_seed`) or
    from it, variable by variable, matched by name: a slot's name holds the path of the weight it belongs to, and
    each seed's weights live in a name scope of their own. The step count and the rate are every seed's."""
    stacked = {v.name: v for v in stack.variables}
    if len(stacked) != len(stack.variables):
        raise RuntimeError("optimizer variables with one name: the seeds' weights are not kept apart")
    for v in seed.variables:
        if v.name not in stacked:
            raise RuntimeError(f"optimizer variable {v.name} has no counterpart in the stacked optimizer")
        src, dst = (stacked[v.name], v) if into_seed else (v, stacked[v.name])
        dst.assign(np.array(src.numpy()))  # a copy: JAX's step gives up (donates) the buffers it is passed


_STACK = None


def _stack_class(keras):
    global _STACK
    if _STACK is None:
        class Stack(keras.Model):
            """The seeds' models side by side: input k to model k, output named by its seed's scope."""

            def __init__(self, models, names):
                super().__init__(name="seeds")
                self.seeds, self.names = models, names

            def call(self, inputs, training=None):
                return {n: m(x, training=training) for n, m, x in zip(self.names, self.seeds, inputs)}

        _STACK = Stack
    return _STACK

