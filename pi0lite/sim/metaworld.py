"""The Meta-World adapter: a gymnasium-style env that yields pi0lite observations.

``MetaWorldEnv(task)`` wraps one Meta-World v3 task (MuJoCo 3.3) and returns, at every step,

* ``image``: the ``corner4`` camera at 64×64, **turned upright** (MuJoCo hands Meta-World's frames
  over rotated by 180°: ``frame[::-1, ::-1]``), uint8 ``[64, 64, 3]``;
* ``state``: hand position xyz and gripper opening, float32 ``[4]`` — nothing that gives away where
  the object or the goal is (those must be read from the image);
* ``instruction``: the task's sentence (:data:`INSTRUCTIONS`).

``info["success"]`` is Meta-World's success flag; episodes are cut at :data:`MAX_STEPS` (150).
``reset(seed=s)`` picks the task variation (object and goal placement) from the seed, so the same
seed always gives the same episode (Meta-World's own ``reset(seed=...)`` does not pin it).

Rendering uses the fast settings (no shadow maps, no MSAA, no reflections): about 10 ms per frame
on one CPU core with Mesa's llvmpipe, against ~130 ms with MuJoCo's defaults.

Camera: ``corner4`` looks at the table from the same angle as the usual ``corner2`` but from closer;
at 64×64 the task's object (button box, drawer, window) covers 2.6–3.1× more pixels (segmentation
render, 5 evaluation scenes per task: 132–364 px against 50–117 px with ``corner2``), and the hand
stays in view.

Axis letters: y, x pixels · c colour (RGB).
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
from jaxtyping import Float, UInt8

import pi0lite.sim  # sets MUJOCO_GL=egl before mujoco is imported
from pi0lite.sim.egl import require_egl

#: The tasks the sim policy is trained on, with their instruction.
INSTRUCTIONS = {
    "button-press-topdown-v3": "press the button from the top",
    "drawer-close-v3": "close the drawer",
    "drawer-open-v3": "open the drawer",
    "window-open-v3": "slide the window open",
    "window-close-v3": "slide the window closed",
}
TASKS = tuple(INSTRUCTIONS)
#: Further tasks with an instruction (usable with the adapter; not in the default training set).
EXTRA_INSTRUCTIONS = {
    "button-press-v3": "press the button from the front",
    "reach-v3": "reach the red dot",
    "push-v3": "push the puck to the goal",
    "door-open-v3": "open the door",
    "door-close-v3": "close the door",
    "handle-press-v3": "press the handle down",
    "faucet-open-v3": "turn the faucet on",
    "faucet-close-v3": "turn the faucet off",
    "plate-slide-v3": "slide the plate into the goal",
    "coffee-button-v3": "press the coffee machine button",
}
ALL_INSTRUCTIONS = {**INSTRUCTIONS, **EXTRA_INSTRUCTIONS}
CAMERA = "corner4"
IMAGE_SIZE = 64
MAX_STEPS = 150
STATE_DIM = 4  # hand xyz + gripper
ACTION_DIM = 4  # hand dxyz (1 cm per unit) + grip effort, in [-1, 1]


def check_task(task: str) -> str:
    if task not in ALL_INSTRUCTIONS:
        raise ValueError(f"unknown Meta-World task {task!r}; known tasks: {', '.join(ALL_INSTRUCTIONS)}")
    return task


def instruction(task: str) -> str:
    return ALL_INSTRUCTIONS[check_task(task)]


def upright(frame: UInt8[np.ndarray, "y x c"]) -> UInt8[np.ndarray, "y x c"]:
    """Meta-World's MuJoCo frame rotated by 180° into the upright view (a copy, C-contiguous)."""
    return np.ascontiguousarray(frame[::-1, ::-1])


def to_model_image(image: UInt8[np.ndarray, "... y x c"]) -> Float[np.ndarray, "... y x c"]:
    """uint8 [0, 255] → float32 [−1, 1], as pi0lite's ``Observation.from_numpy`` (openpi) does."""
    return np.asarray(image, np.float32) / 255.0 * 2.0 - 1.0


def expert_class_name(task: str) -> str:
    """``drawer-close-v3`` → ``SawyerDrawerCloseV3Policy`` (peg-insert-side is the one exception)."""
    if task == "peg-insert-side-v3":
        return "SawyerPegInsertionSideV3Policy"
    return "Sawyer" + "".join(w.capitalize() for w in task[: -len("-v3")].split("-")) + "V3Policy"


def fast_render_settings(model) -> None:
    """No shadow maps, no MSAA, no reflections: ~10× faster on a software renderer."""
    model.vis.quality.shadowsize = 0
    model.vis.quality.offsamples = 0
    model.mat_reflectance[:] = 0
    model.light_castshadow[:] = 0


def variation(env, task: str, seed: int):
    """Meta-World's task object for the variation drawn from ``seed`` (object/goal placement)."""
    from metaworld.types import Task

    space = env._random_reset_space
    rand_vec = np.random.default_rng(seed).uniform(space.low, space.high, size=space.low.size)
    data = dict(rand_vec=rand_vec, env_cls=type(env), partially_observable=False)  # MT1: goal in raw obs
    return Task(env_name=task, data=pickle.dumps(data))


try:  # gymnasium comes with the sim extra; keep this module importable (for its constants) without it
    import gymnasium as _gym

    _Base = _gym.Env
except ImportError:  # pragma: no cover
    _gym, _Base = None, object


class MetaWorldEnv(_Base):
    """One Meta-World task with pi0lite observations (see the module docstring).

    ``raw_obs`` keeps Meta-World's 39-d observation (object and goal positions included) for the
    scripted expert; the policy never sees it.
    """

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, task: str, *, camera: str = CAMERA, image_size: int = IMAGE_SIZE, max_steps: int = MAX_STEPS,
                 render: bool = True):
        check_task(task)
        if render:
            if pi0lite.sim.MUJOCO_IMPORTED_FIRST:
                raise RuntimeError("mujoco was imported before MUJOCO_GL=egl was set: import pi0lite.sim (or set "
                                   "MUJOCO_GL=egl in the environment) before importing mujoco or metaworld")
            require_egl()
        import mujoco
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS

        self.task, self.camera, self.image_size, self.max_steps = task, camera, image_size, max_steps
        self.instruction = ALL_INSTRUCTIONS[task]
        self.env = ALL_V3_ENVIRONMENTS[task]()
        fast_render_settings(self.env.model)
        self.renderer = mujoco.Renderer(self.env.model, image_size, image_size) if render else None
        self.render_mode = "rgb_array"
        if _gym is not None:
            spaces = _gym.spaces
            self.action_space = spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
            self.observation_space = spaces.Dict({
                "image": spaces.Box(0, 255, (image_size, image_size, 3), np.uint8),
                "state": spaces.Box(-np.inf, np.inf, (STATE_DIM,), np.float32),
            })
        self._expert = None
        self.raw_obs: np.ndarray | None = None
        self.t = 0
        self.seed_used: int | None = None

    # --- gymnasium API ----------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start the episode of variation ``seed`` (default 0); returns ``(obs, info)``."""
        self.seed_used = 0 if seed is None else int(seed)
        self.env.set_task(variation(self.env, self.task, self.seed_used))
        self.raw_obs, _ = self.env.reset()
        self.t = 0
        return self._observation(), {"success": False, "raw_obs": self.raw_obs}

    def step(self, action):
        """Execute one action in [−1, 1]⁴; ``terminated`` on success, ``truncated`` at ``max_steps``."""
        if self.raw_obs is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(action, np.float64)
        if action.shape != (ACTION_DIM,):
            raise ValueError(f"action must have shape ({ACTION_DIM},), got {action.shape}")
        self.raw_obs, reward, _, _, info = self.env.step(np.clip(action, -1.0, 1.0))
        self.t += 1
        success = bool(info["success"])
        info = {**info, "success": success, "raw_obs": self.raw_obs}
        return self._observation(), float(reward), success, self.t >= self.max_steps, info

    def render(self) -> UInt8[np.ndarray, "y x c"]:
        """The upright camera image (what the policy sees)."""
        return upright(self.raw_frame())

    def close(self) -> None:
        if self.renderer is not None:
            self.renderer.close()  # before interpreter exit: avoids EGL tracebacks from __del__
            self.renderer = None
        self.env.close()

    # --- pi0lite side ---------------------------------------------------------------------

    def raw_frame(self) -> UInt8[np.ndarray, "y x c"]:
        """The camera image exactly as MuJoCo returns it for Meta-World (rotated by 180°)."""
        if self.renderer is None:
            raise RuntimeError("this env was made with render=False")
        self.renderer.update_scene(self.env.data, camera=self.camera)
        return self.renderer.render()

    def state(self) -> Float[np.ndarray, " 4"]:
        return np.asarray(self.raw_obs[:STATE_DIM], np.float32)

    def object_position(self) -> Float[np.ndarray, " 3"]:
        """Where the task's object (button, drawer handle, window handle, …) is: raw obs[4:7]."""
        return np.asarray(self.raw_obs[4:7], np.float32)

    def expert_action(self) -> Float[np.ndarray, " 4"]:
        """The scripted expert's action for the current raw observation, clipped to [−1, 1]."""
        if self._expert is None:
            import metaworld.policies

            self._expert = getattr(metaworld.policies, expert_class_name(self.task))()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Constant(s) may be too high": the env clips anyway
            return np.clip(self._expert.get_action(self.raw_obs), -1.0, 1.0).astype(np.float32)

    def _observation(self) -> dict:
        image = self.render() if self.renderer is not None else np.zeros((self.image_size,) * 2 + (3,), np.uint8)
        return {"image": image, "state": self.state(), "instruction": self.instruction}
