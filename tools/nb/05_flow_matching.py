"""Builder of notebooks/05_flow_matching.ipynb (run this file to rewrite the notebook)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from nbbuild import Notebook


def build() -> Notebook:
    nb = Notebook(
        "05_flow_matching",
        "05 · Flow matching on a 2-D toy",
        """
        pi0 does not *predict* an action chunk, it *samples* one: it starts from Gaussian noise and
        follows a learned velocity field for 10 Euler steps until the noise has become actions.
        The velocity field is trained by **flow matching**. Here we learn it on a toy whose
        actions are 2-D points, small enough to draw every step, and see why it beats plain MSE
        regression when there is more than one right answer.

        > **The time convention (openpi's, used everywhere in pi0lite)**
        > t = 1 is pure noise, t = 0 is data.
        > $x_t = t\\,\\epsilon + (1-t)\\,a$, target velocity $u = \\epsilon - a$,
        > sampling integrates from t = 1 **down** to t = 0 with $dt = -1/N$.
        > The pi0 paper writes the opposite labels (τ = 0 noise, τ = 1 data); section 7 translates.
        """,
    )
    nb.code(
        """
        import jax
        import jax.numpy as jnp
        import matplotlib.pyplot as plt
        import numpy as np
        from flax import nnx

        from pi0lite import flow
        from pi0lite.course import checks, flow2d, viz

        np.set_printoptions(precision=3, suppress=True)
        key = jax.random.key(0)
        """
    )
    nb.md(
        """
        ## 1. Two right answers

        The toy: an observation $o \\in [-1, 1]$ (say, where an obstacle is) and a one-step
        action chunk $a \\in \\mathbb{R}^2$ that passes the obstacle **either above or below**:
        $a = (o, \\pm 0.8) + 0.08\\,\\text{noise}$. Actions have shape `[b, 1, 2]`: horizon 1,
        action dim 2, exactly like pi0's `[b, H, D]` chunks, so the same functions apply.
        """
    )
    nb.code(
        """
        obs, actions = flow2d.sample_data(jax.random.key(1), 2000)
        print("obs", obs.shape, "actions", actions.shape)
        print(f"share of actions above the obstacle: {float(jnp.mean(actions[:, 0, 1] > 0)):.3f}")
        viz.plot_points_2d({"demonstrated actions": actions}, title="two modes for every observation")
        plt.show()
        """
    )
    nb.md(
        """
        ## 2. The path from data to noise

        Flow matching connects every data point $a$ with a noise sample $\\epsilon$ by a straight
        line, $x_t = t\\,\\epsilon + (1-t)\\,a$: at t = 0 we are at the data, at t = 1 at the noise.
        """
    )
    nb.code(
        """
        noise = jax.random.normal(jax.random.key(2), actions.shape)
        fig, axes = plt.subplots(1, 5, figsize=(12, 3.0), sharex=True, sharey=True)
        for ax, t in zip(axes, [0.0, 0.25, 0.5, 0.75, 1.0]):
            x_t = flow.interpolate(noise, actions, jnp.full((actions.shape[0],), t))
            viz.plot_points_2d({f"x_t, t = {t}": x_t}, ax=ax)
        fig.tight_layout()
        plt.show()
        """
    )
    nb.md(
        """
        ### Exercise 5.1 — interpolate

        Write `interpolate(noise, actions, time)`: `noise` and `actions` are `[b, h, d]`, `time`
        is `[b]` (one time per example). Return $x_t = t\\,\\epsilon + (1-t)\\,a$.
        """
    )
    nb.exercise(
        "5.1",
        "x_t = t * noise + (1 - t) * actions",
        '''
        def interpolate(noise, actions, time):
            """[b, h, d], [b, h, d], [b] -> x_t [b, h, d] (t = 1 noise, t = 0 data)."""
            ### BEGIN SOLUTION
            t = time[:, None, None]  # [b] -> [b, 1, 1] broadcasts over h and d
            return t * noise + (1.0 - t) * actions
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_flow_interpolate(interpolate)")
    nb.hint(
        """
        `time[:, None, None]` has shape `[b, 1, 1]` and broadcasts against `[b, h, d]`.
        """
    )
    nb.code("from pi0lite.flow import interpolate  # the package version from here on")
    nb.md(
        """
        ## 3. The target velocity

        Along the line the velocity is constant: $u = \\frac{d x_t}{dt} = \\epsilon - a$. It points
        from the data towards the noise, because t grows towards the noise. The network
        $v_\\theta(x_t, t, o)$ is trained to predict it. A finite difference confirms the
        derivative:
        """
    )
    nb.code(
        """
        t = jnp.full((actions.shape[0],), 0.4)
        h = 1e-3
        finite_difference = (interpolate(noise, actions, t + h) - interpolate(noise, actions, t - h)) / (2 * h)
        assert np.allclose(finite_difference, noise - actions, atol=2e-3)
        print(f"max |dx_t/dt − (noise − actions)| = {float(jnp.max(jnp.abs(finite_difference - (noise - actions)))):.4f}")
        """
    )
    nb.md(
        """
        ### Exercise 5.2 — target velocity

        Write `target_velocity(noise, actions)` returning $u = \\epsilon - a$.
        """
    )
    nb.exercise(
        "5.2",
        "u = d x_t / dt",
        '''
        def target_velocity(noise, actions):
            """[b, h, d], [b, h, d] -> u [b, h, d], the time derivative of x_t."""
            ### BEGIN SOLUTION
            return noise - actions
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_target_velocity(target_velocity)")
    nb.hint(
        """
        Differentiate $t\\,\\epsilon + (1-t)\\,a$ with respect to $t$.
        """
    )
    nb.code("from pi0lite.flow import target_velocity  # the package version from here on")
    nb.md(
        """
        ## 4. Which times to train on

        Training picks one random time per example. pi0 draws $t \\sim \\text{Beta}(1.5, 1)$,
        squeezed into $[0.001, 1]$: more weight near the **noise** end, where predicting the
        velocity is hardest (the network sees almost nothing of the data there).
        """
    )
    nb.code(
        """
        times = flow.sample_time(jax.random.key(3), 20_000)
        viz.plot_time_histogram(times)
        plt.show()
        mean, share_noisy = float(times.mean()), float(jnp.mean(times > 0.5))
        print(f"mean t = {mean:.3f} (Beta(1.5, 1) mean: 0.6);  share with t > 0.5: {share_noisy:.3f}")
        assert abs(mean - 0.6) < 0.01 and 0.001 <= float(times.min()) and float(times.max()) <= 1.0
        """
    )
    nb.md(
        """
        ## 5. Train a velocity field, and a regression baseline

        The flow-matching loss is the squared error between predicted and target velocity,
        $\\mathbb{E}\\,\\lVert v_\\theta(x_t, t, o) - (\\epsilon - a)\\rVert^2$
        (`flow2d.flow_matching_loss`, built from `flow.sample_time`, `interpolate` and
        `target_velocity`). The baseline `flow2d.RegressionNet` maps $o$ straight to an action
        with MSE. Both train on fresh toy batches for a few seconds.

        The two losses are drawn on **separate axes** because their values are not comparable:
        one is an error in *velocity* (the target $\\epsilon - a$ includes the noise, so it never
        goes to zero), the other an error in *action*. A lower number on one axis says nothing
        about which model is better; section 7 compares their samples instead.
        """
    )
    nb.code(
        """
        velocity_net = flow2d.VelocityNet(rngs=nnx.Rngs(0))
        flow_losses = flow2d.train(velocity_net, flow2d.flow_matching_loss, jax.random.key(4), steps=1500)

        regression_net = flow2d.RegressionNet(rngs=nnx.Rngs(0))
        mse_losses = flow2d.train(regression_net, flow2d.regression_loss, jax.random.key(5), steps=500)

        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
        viz.plot_losses({"flow matching (velocity error)": flow_losses}, ax=left)
        viz.plot_losses({"MSE regression (action error)": mse_losses}, ax=right)
        fig.tight_layout()
        plt.show()
        print(f"flow-matching loss: first 100 steps {flow_losses[:100].mean():.3f}, last 100 {flow_losses[-100:].mean():.3f}")
        assert flow_losses[-100:].mean() < 0.8 * flow_losses[:100].mean()
        """,
        tags=("nbval-ignore-output",),  # progress bars
    )
    nb.md(
        """
        The flow loss does not go to zero, and should not: at a given $x_t$ many (noise, data)
        pairs pass through, so the best the network can do is their *average* velocity. That
        average field is exactly the one that transports noise to the data distribution.

        ## 6. Sampling: Euler from noise to data

        Start at $x_1 = \\epsilon$ and step $x \\leftarrow x + dt\\cdot v_\\theta(x, t)$ with
        $dt = -1/N$, at times $t = 1, 1 - \\tfrac1N, \\dots, \\tfrac1N$, ending at $t = 0$.

        ### Exercise 5.3 — Euler sampling

        Write `euler_sample(velocity_fn, noise, num_steps)`. `velocity_fn(x, time)` takes `x` of
        shape `[b, h, d]` and `time` of shape `[b]`; return $x$ at $t = 0$.
        """
    )
    nb.exercise(
        "5.3",
        "integrate from t = 1 to t = 0 in num_steps Euler steps",
        '''
        def euler_sample(velocity_fn, noise, num_steps):
            """Euler-integrate dx/dt = v(x, t) from t = 1 (noise) to t = 0; return x at t = 0."""
            ### BEGIN SOLUTION
            dt = -1.0 / num_steps
            x = noise
            for i in range(num_steps):
                time = jnp.full((x.shape[0],), 1.0 + i * dt)  # 1, 1 - 1/N, ..., 1/N
                x = x + dt * velocity_fn(x, time)
            return x
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_euler_sample(euler_sample)")
    nb.hint(
        """
        `dt = -1.0 / num_steps`; loop `i` over `range(num_steps)`; the time of step `i` is
        `1.0 + i * dt`, as an array `jnp.full((x.shape[0],), ...)`; update `x = x + dt * v`.
        """
    )
    nb.code("from pi0lite.course.flow2d import euler_sample  # the package version from here on")
    nb.md("Sample 300 actions for the observation $o = 0.3$ and draw every Euler step:")
    nb.code(
        """
        o = jnp.full((300,), 0.3)
        start = jax.random.normal(jax.random.key(6), (300, 1, 2))
        samples, trajectory = euler_sample(lambda x, t: velocity_net(x, t, o), start, 10, return_trajectory=True)

        near = jnp.abs(obs - 0.3) < 0.1
        viz.plot_flow_2d(trajectory, data=actions[near], title="10 Euler steps at o = 0.3")
        plt.show()

        y = np.asarray(samples[:, 0, 1])
        print(f"above: {np.mean(y > 0):.2f}, below: {np.mean(y < 0):.2f}, |y| > 0.4: {np.mean(np.abs(y) > 0.4):.2f}")
        assert 0.25 < np.mean(y > 0) < 0.75, "both modes are sampled"
        assert np.mean(np.abs(y) > 0.4) > 0.8, "samples land on the modes, not between them"
        """
    )
    nb.md(
        """
        ## 7. Flow matching vs MSE regression

        The regression net was trained on the same data with the same network size. For every
        observation it outputs the **mean** of the two modes, $(o, 0)$: straight into the
        obstacle. Flow matching samples one of the two modes each time.
        """
    )
    nb.code(
        """
        grid = jnp.linspace(-1, 1, 400)
        flow_actions = euler_sample(lambda x, t: velocity_net(x, t, grid), jax.random.normal(jax.random.key(7), (400, 1, 2)), 10)
        regression_actions = regression_net(grid)

        viz.plot_points_2d({"data": actions[:800], "flow matching samples": flow_actions,
                            "MSE regression": regression_actions}, title="same data, two objectives")
        plt.show()

        flow_y, mse_y = np.abs(np.asarray(flow_actions[:, 0, 1])), np.abs(np.asarray(regression_actions[:, 0, 1]))
        print(f"mean |y|: data 0.8, flow {flow_y.mean():.2f}, regression {mse_y.mean():.2f}")
        assert mse_y.mean() < 0.2 and flow_y.mean() > 0.6
        """
    )
    nb.md(
        """
        This is why pi0 uses flow matching for actions: a robot demonstration set is full of
        multi-modal choices (grasp left or right, go around either side), and averaging them is
        the one action nobody demonstrated.

        ## 8. The paper's time convention, translated

        | | openpi / pi0lite | pi0 paper |
        | --- | --- | --- |
        | noise at | t = 1 | τ = 0 |
        | data at | t = 0 | τ = 1 |
        | noisy action | $x_t = t\\,\\epsilon + (1-t)\\,a$ | $x^\\tau = \\tau\\,a + (1-\\tau)\\,\\epsilon$ |
        | target | $u = \\epsilon - a$ | $u^\\tau = a - \\epsilon$ |
        | sampling | $t: 1 \\to 0$, $dt = -1/N$ | $\\tau: 0 \\to 1$, $d\\tau = +1/N$ |

        The translation is $\\tau = 1 - t$ and $v_{\\text{paper}}(x, \\tau) = -v(x, 1-\\tau)$: the same
        straight paths, the same model, opposite labels. Checked numerically:
        """
    )
    nb.code(
        """
        tau = jnp.full((actions.shape[0],), 0.3)
        x_paper = tau[:, None, None] * actions + (1 - tau[:, None, None]) * noise
        assert np.allclose(x_paper, interpolate(noise, actions, 1 - tau), atol=1e-6)  # same point
        assert np.allclose(actions - noise, -target_velocity(noise, actions))  # opposite velocity


        def paper_euler(velocity_paper, noise, num_steps):
            x, d_tau = noise, 1.0 / num_steps
            for i in range(num_steps):  # τ = 0, 1/N, ..., 1 − 1/N
                x = x + d_tau * velocity_paper(x, jnp.full((x.shape[0],), i * d_tau))
            return x


        velocity_paper = lambda x, tau: -velocity_net(x, 1.0 - tau, grid)  # noqa: E731
        same_start = jax.random.normal(jax.random.key(7), (400, 1, 2))
        paper_samples = paper_euler(velocity_paper, same_start, 10)
        gap = float(jnp.max(jnp.abs(paper_samples - flow_actions)))
        print(f"max difference between the two conventions' samples: {gap:.1e}")
        assert gap < 1e-4
        """
    )
    nb.summary(
        """
        * Flow matching learns a velocity field that carries noise to data along straight lines
          $x_t = t\\,\\epsilon + (1-t)\\,a$, with target $u = \\epsilon - a$
          (`pi0lite.flow.interpolate`, `target_velocity`).
        * Training times follow Beta(1.5, 1), favouring the noisy end (`flow.sample_time`).
        * Sampling is Euler from t = 1 to t = 0 with $dt = -1/N$ (`flow.euler_step`,
          `flow2d.euler_sample`); pi0 uses N = 10.
        * MSE regression averages modes; flow matching samples them.
        * The paper's τ is $1 - t$ and its velocity is $-u$: same model, opposite labels.

        Next: **06 · pi0's loss and sampling**, the same recipe on action chunks, with a
        transformer as the velocity field.
        """
    )
    return nb


if __name__ == "__main__":
    print(build().write())
