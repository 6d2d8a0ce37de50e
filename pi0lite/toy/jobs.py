"""The policies ``python -m pi0lite.demo --policies a,b,c`` can train: one registry, one place to add one.

Each entry says how one training job is run (which worker module, which ``--mode``, which extra
arguments), where its checkpoints and policy live (``--out/<name>/``), where ``--ship`` copies
it (``pi0lite/assets/<asset>``), and what it is (``help``). The demo trains the chosen jobs pinned
one per core, evaluates every one the same way and reports each under ``results.json``'s
``policies.<name>``.

To add a policy: write its training mode (usually in :mod:`pi0lite.toy.demo_worker`, which builds
the training data from the seed and writes ``<name>/policy`` with
:meth:`pi0lite.toy.policy.Policy.save`), then register a :class:`Job` here. Every
registered policy must load with :meth:`~pi0lite.toy.policy.Policy.load`, because the demo
evaluates it through :func:`pi0lite.toy.evaluate.policy_fn`.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, kw_only=True)
class Job:
    """One trainable demo policy."""

    name: str  #: results key and sub-directory of ``--out``
    mode: str  #: the worker's ``--mode`` (``flow``, ``mse``, ...)
    aux_weight: float = 1.0  #: weight of the grounding loss (0 switches the grounding head off)
    asset: str | None = None  #: directory in ``pi0lite/assets`` that ``--ship`` replaces (None: not shipped)
    worker: str = "pi0lite.toy.demo_worker"  #: module run as ``python -m`` for training
    extra_args: tuple[str, ...] = ()  #: further worker arguments
    task: str = "default"  #: the expert variant of its training data (:data:`pi0lite.toy.expert.TASKS`)
    help: str = ""

    def command(self, *, out: str, steps: int, seed: int, batch_size: int, image_size: int, position: int,
                aux_scale: float = 1.0, episodes: int = 2500, eval_episodes: int = 0, aligned: int = 300) -> list[str]:
        """The worker's argument list (without the interpreter). ``aux_scale=0`` is ``--no-aux``;
        ``eval_episodes > 0`` has the worker evaluate its policy after training (on its own core)."""
        return ["-m", self.worker, "--out", out, "--mode", self.mode, "--name", self.name, "--steps", str(steps),
                "--seed", str(seed), "--batch-size", str(batch_size), "--aux-weight",
                str(self.aux_weight * aux_scale), "--image-size", str(image_size), "--position", str(position),
                "--episodes", str(episodes), "--task", self.task, "--eval-episodes", str(eval_episodes),
                "--aligned", str(aligned), *self.extra_args]


JOBS: dict[str, Job] = {}


def register(job: Job) -> Job:
    """Add ``job`` to :data:`JOBS` (a name may be registered once)."""
    if job.name in JOBS:
        raise ValueError(f"demo policy {job.name!r} is already registered")
    JOBS[job.name] = job
    return job


register(Job(name="pi0", mode="flow", asset="toy_policy",
             help="pi0, flow matching, with the grounding head (the shipped policy)"))
register(Job(name="mse", mode="mse", asset="toy_policy_mse",
             help="the same network regressing the chunk with MSE (the baseline)"))
register(Job(name="pi0_noaux", mode="flow", aux_weight=0.0, asset="toy_policy_noaux",
             help="pi0 without the grounding loss (the ablation)"))
register(Job(name="pi0_fast", mode="fast", asset="toy_policy_fast", worker="pi0lite.toy.fast_job",
             help="pi0-FAST: the same backbone writing the chunk as FAST tokens (notebook 16)"))
register(Job(name="pi0_rtc", mode="flow", asset="toy_policy_rtc", extra_args=("--rtc-max-delay", "4"),
             help="pi0 trained with simulated inference delays 0..4 (training-time real-time chunking, notebook 11)"))
register(Job(name="pi0_fork", mode="flow", asset="toy_policy_fork", task="fork",
             help="pi0 on the 'fork' task (faster expert, side decided late; the real-time chunking variant)"))
register(Job(name="pi0_rtc_fork", mode="flow", asset="toy_policy_rtc_fork", task="fork", extra_args=("--rtc-max-delay", "4"),
             help="pi0_rtc on the 'fork' task (training-time real-time chunking, delays 0..4)"))
register(Job(name="pi05_ki", mode="ki", aux_weight=0.0,
             help="pi0.5 + knowledge insulation (FAST loss on the VLM, stop-gradient), no grounding head"))
register(Job(name="pi05_noki", mode="ki", aux_weight=0.0, extra_args=("--no-insulate",),
             help="pi0.5 with both losses but no stop-gradient (isolates the insulation)"))
register(Job(name="pi05_ki_aux", mode="ki", aux_weight=1.0, asset="toy_policy_pi05_ki",
             help="pi05_ki plus the grounding head on the VLM (fix 1: a VLM-side co-training objective; "
                  "the shipped KI policy)"))
register(Job(name="pi05_ki_fine", mode="ki", aux_weight=0.0, extra_args=("--fast-scale", "20", "--max-fast-len", "24"),
             help="pi05_ki with FAST scale 20 instead of 10 (fix 2: finer action tokens, 6.3 instead of 4.7 a chunk)"))

#: What ``make demo`` trains when ``--policies`` is not given.
DEFAULT = ("pi0", "mse")


def parse_policies(text: str) -> list[Job]:
    """``"pi0,mse"`` -> the registered jobs, in the order given; unknown or repeated names are refused."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError("--policies needs at least one name; known: " + ", ".join(JOBS))
    unknown = [n for n in names if n not in JOBS]
    if unknown:
        raise ValueError(f"unknown policy {', '.join(map(repr, unknown))} in --policies; known: "
                         + "; ".join(f"{j.name} ({j.help})" for j in JOBS.values()))
    if len(set(names)) != len(names):
        raise ValueError(f"--policies names a policy twice: {text!r}")
    jobs = [JOBS[n] for n in names]
    tasks = sorted({j.task for j in jobs})
    if len(tasks) > 1:  # one run builds one dataset
        raise ValueError(f"--policies mixes training tasks {tasks} (one run, one dataset): "
                         + ", ".join(f"{j.name}: {j.task}" for j in jobs))
    return jobs
